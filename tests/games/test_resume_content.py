"""A LOLA checkpoint whose hash is valid but whose content does not fit the run is a one-line CheckpointError.

`etude.games.train` resumes through `etude.runtime.train_loop`, whose ``like=`` template checks the step
and the sampler's state; the parameter history (theta, and the opponent-model estimates) is checked
here against the freshly built run's dtype and shape: an int64 or float32 theta was cast silently.
"""

import pytest
import torch

from etude.errors import CheckpointError
from etude.games import ipd, train
from etude.runtime import load_checkpoint, save_checkpoint

KW = dict(steps=4, seeds=2, estimator="dice", batch_size=4, horizon=5, checkpoint_every=2)


def _wrong(state: dict, change: str) -> None:
    if change == "sampler of 3 bytes":
        state["sampler"] = torch.zeros(3, dtype=torch.uint8)
    elif change == "sampler as floats":
        state["sampler"] = state["sampler"].double()
    elif change == "sampler missing":
        del state["sampler"]
    elif change == "step as a string":
        state["step"] = str(state["step"])
    elif change == "theta as int64":
        state["theta"] = state["theta"].round().long()
    elif change == "theta as float32":
        state["theta"] = state["theta"].float()
    elif change == "theta as a string":
        state["theta"] = "0.5"
    elif change == "theta of another seed count":
        state["theta"] = state["theta"][:1]
    elif change == "estimates as float32":
        state["estimates"] = state["estimates"].float()
    elif change == "estimates of another shape":
        state["estimates"] = state["estimates"][:, :1]


CHANGES = [
    "sampler of 3 bytes", "sampler as floats", "sampler missing", "step as a string", "theta as int64",
    "theta as float32", "theta as a string", "theta of another seed count",
]  # fmt: skip


@pytest.mark.parametrize("opponent_model", [False, True])
@pytest.mark.parametrize("change", CHANGES + ["estimates as float32", "estimates of another shape"])
def test_a_checkpoint_with_wrong_content_is_refused_in_one_line(tmp_path, change, opponent_model):
    if change.startswith("estimates") and not opponent_model:
        pytest.skip("only an opponent-model run stores estimates")
    ckpt = tmp_path / "lola.pt"
    clean = train(ipd(), "lola", "naive", checkpoint=ckpt, opponent_model=opponent_model, **KW)
    state = load_checkpoint(ckpt)
    assert state["step"] == 4
    resumed = train(ipd(), "lola", "naive", checkpoint=ckpt, resume=True, opponent_model=opponent_model, **KW)
    assert torch.equal(resumed.theta, clean.theta)  # the untouched checkpoint resumes to the same run
    _wrong(state, change)
    save_checkpoint(ckpt, state)  # a valid hash over the wrong content
    with pytest.raises(CheckpointError) as refused:
        train(ipd(), "lola", "naive", checkpoint=ckpt, resume=True, opponent_model=opponent_model, **KW)
    message = str(refused.value)
    assert "\n" not in message and str(ckpt) in message, message
    field = change.split()[0]
    assert field in message, message


COIN_KW = dict(steps=2, seeds=[0, 1], episodes=4, horizon=5, hidden=4, checkpoint_every=1)
COIN_CHANGES = {
    "sampler of 3 bytes": lambda s: s.update(sampler=torch.zeros(3, dtype=torch.uint8)),
    "step as a string": lambda s: s.update(step="2"),
    "theta as int64": lambda s: s.update(theta=[t.round().long() for t in s["theta"]]),
    "theta as a string": lambda s: s.update(theta="0.5"),
    "theta of one agent": lambda s: s.update(theta=s["theta"][:1]),
    "optimizers with float16 moments": lambda s: [
        m.update(exp_avg=m["exp_avg"].half()) for o in s["optimizers"] for m in o["state"].values()
    ],
    "optimizers with a string state": lambda s: s["optimizers"][0].update(state={0: "moments"}),
    "optimizers as a string": lambda s: s.update(optimizers="adam"),
    "curves as float64": lambda s: s["curves"].update(reward=s["curves"]["reward"].double()),
    "curves of another width": lambda s: s["curves"].update(reward=s["curves"]["reward"][:, :1]),
    "curves missing a key": lambda s: s["curves"].pop("reward"),
}


@pytest.mark.parametrize("change", sorted(COIN_CHANGES))
def test_a_coin_checkpoint_with_wrong_content_is_refused_in_one_line(tmp_path, change):
    from etude.games.coin_training import train_coin

    ckpt = tmp_path / "coin.pt"
    clean = train_coin("lola", "naive", checkpoint=ckpt, **COIN_KW)
    assert torch.equal(train_coin("lola", "naive", checkpoint=ckpt, resume=True, **COIN_KW).theta, clean.theta)
    state = load_checkpoint(ckpt)
    COIN_CHANGES[change](state)
    save_checkpoint(ckpt, state)  # a valid hash over the wrong content
    with pytest.raises(CheckpointError) as refused:
        train_coin("lola", "naive", checkpoint=ckpt, resume=True, **COIN_KW)
    message = str(refused.value)
    assert "\n" not in message and str(ckpt) in message and change.split()[0] in message, message


def test_coin_curves_must_cover_the_stored_step(tmp_path):
    from etude.games.coin_training import train_coin

    ckpt = tmp_path / "coin.pt"
    train_coin("lola", "naive", checkpoint=ckpt, **COIN_KW)
    state = load_checkpoint(ckpt)
    state["curves"] = {k: v[:, :1] for k, v in state["curves"].items()}  # one step of curves, step 2
    save_checkpoint(ckpt, state)
    with pytest.raises(CheckpointError, match=r"curves cover 1 steps, its step is 2"):
        train_coin("lola", "naive", checkpoint=ckpt, resume=True, **COIN_KW)
