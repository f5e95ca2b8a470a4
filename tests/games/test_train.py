"""Training loop: determinism, seed independence, resume after a kill, bad input, tournament, plots."""

import pytest
import torch

import etude.games.training as train_module
from etude.errors import BadInputError, CheckpointError
from etude.games import History, ipd, matching_pennies, train
from etude.games.plots import plot_policies, plot_rewards
from etude.games.tournament import tournament
from etude.statistics import mean_half_width


@pytest.mark.parametrize("estimator", ["exact", "dice"])
def test_same_seeds_same_run(estimator):
    kw = dict(steps=6, seeds=[3, 4], estimator=estimator, batch_size=8, horizon=10)
    a, b = train(ipd(), "lola", "naive", **kw), train(ipd(), "lola", "naive", **kw)
    assert torch.equal(a.theta, b.theta) and torch.equal(a.rewards, b.rewards)


def test_a_seed_runs_the_same_alone_or_in_a_batch():
    alone = train(ipd(), "lola", "lookahead", steps=10, seeds=[5])
    batch = train(ipd(), "lola", "lookahead", steps=10, seeds=[2, 5, 9])
    assert torch.allclose(alone.theta[0], batch.theta[1], atol=1e-12)


def test_history_shapes_and_rewards_are_exact_values():
    from etude.games import exact_values

    h = train(matching_pennies(), "naive", "lola", steps=4, seeds=3)
    assert isinstance(h, History)
    assert h.theta.shape == (3, 5, 2, 5) and h.rewards.shape == (3, 5, 2)
    v1, v2 = exact_values(matching_pennies(), h.theta[:, -1, 0], h.theta[:, -1, 1])
    assert torch.allclose(h.final_rewards(), torch.stack([v1, v2], -1))
    assert h.learners == ("naive", "lola") and h.seeds == [0, 1, 2]


def test_one_step_is_the_learner_update():
    from etude.games.learners import lola_gradient, naive_gradient
    from etude.games import initial_theta, unnormalized_values

    def values(a, b):
        v = unnormalized_values(ipd(), a, b)
        return v[:, 0], v[:, 1]

    def swapped(a, b):
        v1, v2 = values(b, a)
        return v2, v1

    h = train(ipd(), "lola", "naive", steps=1, seeds=[1], lr=0.7, opponent_lr=0.3)
    t = initial_theta([1])
    expected1 = t[:, 0] + 0.7 * lola_gradient(values, t[:, 0], t[:, 1], 0.3)
    expected2 = t[:, 1] + 0.7 * naive_gradient(swapped, t[:, 1], t[:, 0], 0.3)
    assert torch.allclose(h.theta[:, 1, 0], expected1) and torch.allclose(h.theta[:, 1, 1], expected2)


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    kw = dict(steps=12, seeds=[0, 1], estimator="dice", batch_size=8, horizon=12, checkpoint_every=4)
    reference = train(ipd(), "lola", "lola", **kw)
    calls = {"n": 0}
    real = train_module.learner_gradient

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2 * 9:  # both agents per step: dies during step 10, after the checkpoint at 8
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    ckpt = tmp_path / "run.pt"
    monkeypatch.setattr(train_module, "learner_gradient", dying)
    with pytest.raises(KeyboardInterrupt):
        train(ipd(), "lola", "lola", checkpoint=ckpt, **kw)
    monkeypatch.setattr(train_module, "learner_gradient", real)
    from etude.runtime import load_checkpoint

    assert load_checkpoint(ckpt)["step"] == 8
    resumed = train(ipd(), "lola", "lola", checkpoint=ckpt, resume=True, **kw)
    assert torch.equal(resumed.theta, reference.theta)


def test_resume_refuses_a_corrupt_or_foreign_checkpoint(tmp_path):
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="run.pt"):
        train(ipd(), "naive", "naive", steps=2, seeds=2, checkpoint=ckpt, resume=True)
    train(ipd(), "naive", "naive", steps=2, seeds=2, checkpoint=ckpt, checkpoint_every=1)
    with pytest.raises(CheckpointError, match="lr"):
        train(ipd(), "naive", "naive", steps=2, seeds=2, lr=0.5, checkpoint=ckpt, resume=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(learner1="selfish"), "unknown learner 'selfish'"),
        (dict(estimator="reinforce"), "unknown estimator"),
        (dict(learner1="lookahead", estimator="dice"), "lookahead"),
        (dict(steps=-1), "steps"),
        (dict(seeds=0), "seeds"),
        (dict(seeds=[1, 1]), "repeat"),
        (dict(seeds=[-3]), "seeds"),
        (dict(lr=0.0), "lr"),
        (dict(opponent_lr=-1.0), "opponent_lr"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(learner1="naive", learner2="naive", steps=2, seeds=2)
    args.update(kwargs)
    with pytest.raises(BadInputError, match=match):
        train(ipd(), **args)


def test_tournament_table_and_interval():
    result = tournament(ipd(), ("naive", "lola"), seeds=3, steps=5)
    assert set(result.rewards) == {("naive", "naive"), ("naive", "lola"), ("lola", "naive"), ("lola", "lola")}
    table = result.table()
    assert table.count("\n") == 3 and "± " in table
    mean, half = mean_half_width(torch.tensor([1.0, 2.0, 3.0]))
    assert mean == pytest.approx(2.0) and half == pytest.approx(1.96 * 1.0 / 3**0.5)


def test_plots_are_written(tmp_path):
    h = train(ipd(), "lola", "naive", steps=3, seeds=4)
    for path in (plot_policies(h, tmp_path / "p.png"), plot_rewards({"x": h}, tmp_path / "r.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_tournament_prints_the_table(capsys):
    from etude.cli import main

    assert main(["games", "tournament", "--seeds", "2", "--steps", "3", "--learners", "naive", "lola"]) == 0
    out = capsys.readouterr().out
    assert "| naive |" in out and "| lola |" in out and out.count("±") == 4
    assert main(["games", "tournament", "--gamma", "1.5", "--seeds", "2", "--steps", "1"]) == 2
    assert capsys.readouterr().err.startswith("etude: error: gamma must be")
