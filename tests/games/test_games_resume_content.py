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
