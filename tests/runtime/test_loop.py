"""etude.runtime.train_loop: exact resume, checkpoint cadence, refused checkpoints, schedule, progress and logs.

The problem is a seeded linear regression whose minibatches come from a generator the loop checkpoints,
trained by Adam with a schedule and gradient clipping: every piece of state a resume must restore.
(Two gloo ranks against one process: tests/runtime/test_ddp.py.)
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from etude.errors import BadInputError, CheckpointError
from etude.runtime import Saved, load_checkpoint, train_loop
from etude.runtime import loop as loop_module

STEPS, EVERY, BATCH = 10, 3, 8


class Stop(Exception):
    """Raised in place of a killed run."""


def problem(seed: int = 0):
    """A linear model, its Adam optimizer and a step drawing each minibatch from a checkpointed generator."""
    torch.manual_seed(seed)
    model = nn.Linear(3, 1)
    generator = torch.Generator().manual_seed(seed + 1)
    w = torch.tensor([[1.5], [-2.0], [0.5]])

    def step(t: int, module: nn.Module) -> torch.Tensor:
        x = torch.randn(BATCH, 3, generator=generator)
        y = x @ w + 0.1 * torch.randn(BATCH, 1, generator=generator)
        return nn.functional.mse_loss(module(x), y)

    return model, torch.optim.Adam(model.parameters(), lr=0.1), generator, step


def run(tmp_path=None, *, stop: int | None = None, resume: bool = False, config=None, **kwargs):
    """Train the problem (a checkpoint in tmp_path when given); ``stop``: die at that step. Returns (model, result)."""
    model, optimizer, generator, step = problem()

    def dying(t: int, module: nn.Module) -> torch.Tensor:
        if stop is not None and t == stop:
            raise Stop
        return step(t, module)

    result = train_loop(
        dying, steps=STEPS, model=model, optimizer=optimizer, kind="test", config=config or {"lr": 0.1},
        state={"generator": generator}, checkpoint=None if tmp_path is None else tmp_path / "run.pt", every=EVERY,
        resume=resume, schedule=lambda t: 1 / (1 + t), clip=0.5, show_progress=False, **kwargs)
    return model, result


def test_kill_and_resume_gives_the_parameters_of_an_uninterrupted_run(tmp_path):
    whole, whole_result = run()
    with pytest.raises(Stop):
        run(tmp_path, stop=7)  # killed during step 7: the checkpoint of step 6 is on disk
    assert load_checkpoint(tmp_path / "run.pt")["step"] == 6
    resumed, result = run(tmp_path, resume=True)
    assert result.start == 6
    for name, value in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert result.losses == whole_result.losses and len(result.losses) == STEPS
    first = problem()[0].state_dict()
    assert max((whole.state_dict()[k] - v).abs().max().item() for k, v in first.items()) > 0.1  # it trained


def test_the_schedule_sets_each_steps_learning_rate_also_after_a_resume(tmp_path):
    seen = []

    def record(t: int) -> None:
        seen.append((t, optimizer.param_groups[0]["lr"]))

    model, optimizer, generator, step = problem()
    kwargs = dict(steps=4, model=model, optimizer=optimizer, kind="test", config={}, state={"generator": generator},
                  checkpoint=tmp_path / "s.pt", every=2, schedule=lambda t: 0.5**t, after_backward=record)
    with pytest.raises(Stop):
        train_loop(lambda t, m: (_raise() if t == 3 else step(t, m)), **kwargs)
    model, optimizer, generator, step = problem()
    kwargs.update(model=model, optimizer=optimizer, state={"generator": generator}, resume=True)
    train_loop(step, **kwargs)
    assert seen == [(0, 0.1), (1, 0.05), (2, 0.025), (2, 0.025), (3, 0.0125)]


def _raise():
    raise Stop


def test_checkpoints_are_written_every_few_steps_and_at_the_end(tmp_path, monkeypatch):
    written = []
    real = loop_module.save_checkpoint
    monkeypatch.setattr(loop_module, "save_checkpoint", lambda path, state: (written.append(state["step"]),
                                                                             real(path, state)))
    run(tmp_path)
    assert written == [3, 6, 9, 10]
    state = load_checkpoint(tmp_path / "run.pt")
    assert state["kind"] == "test" and state["config"] == {"lr": 0.1} and len(state["losses"]) == STEPS
    assert set(state) == {"kind", "config", "step", "losses", "model", "optimizer", "generator"}


def test_a_flipped_checkpoint_byte_is_refused(tmp_path):
    with pytest.raises(Stop):
        run(tmp_path, stop=5)
    path = tmp_path / "run.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="hash"):
        run(tmp_path, resume=True)


def test_a_resume_with_another_configuration_names_the_field(tmp_path):
    with pytest.raises(Stop):
        run(tmp_path, stop=5)
    with pytest.raises(CheckpointError, match=r"config\.lr differs") as info:
        run(tmp_path, resume=True, config={"lr": 0.2})
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="kind differs"):
        model, optimizer, generator, step = problem()
        train_loop(step, steps=STEPS, model=model, optimizer=optimizer, kind="other", config={"lr": 0.1},
                   checkpoint=tmp_path / "run.pt", resume=True)


def test_a_checkpoint_beyond_the_run_is_refused(tmp_path):
    run(tmp_path)  # 10 steps
    model, optimizer, generator, step = problem()
    with pytest.raises(CheckpointError, match="step 10 is not in"):
        train_loop(step, steps=5, model=model, optimizer=optimizer, kind="test", config={"lr": 0.1},
                   state={"generator": generator}, checkpoint=tmp_path / "run.pt", resume=True)


def test_without_a_checkpoint_file_resume_starts_fresh(tmp_path):
    _, result = run(tmp_path, resume=True)
    assert result.start == 0 and len(result.losses) == STEPS


def test_a_self_updating_step_is_checkpointed_through_its_state(tmp_path):
    """A step returning None (e.g. the games' exact updates) leaves backward and optimizer out."""
    x = torch.zeros(3)

    def step(t: int, _: object) -> None:
        x.add_(t + 1)
        if t == 4 and stopping:
            raise Stop

    saved = Saved(lambda: x.clone(), lambda v: x.copy_(v))
    stopping = True
    with pytest.raises(Stop):
        train_loop(step, steps=6, kind="count", config={}, state={"x": saved}, checkpoint=tmp_path / "c.pt", every=2)
    x.zero_()
    stopping = False
    result = train_loop(step, steps=6, kind="count", config={}, state={"x": saved}, checkpoint=tmp_path / "c.pt",
                        every=2, resume=True)
    assert result.start == 4 and result.losses == [] and torch.equal(x, torch.full((3,), 21.0))  # 1 + ... + 6


def test_a_non_finite_loss_stops_the_run_when_asked():
    model, optimizer, _, _ = problem()
    with pytest.raises(BadInputError, match=r"nan: training diverged \(loss nan at step 0\); lower the learning rate"):
        train_loop(lambda t, m: m(torch.full((1, 3), math.nan)).sum(), steps=3, model=model, optimizer=optimizer,
                   kind="t", config={}, finite=True, desc="nan")


def test_progress_off_a_terminal_is_a_line_every_few_steps_and_a_summary(capsys, monkeypatch):
    monkeypatch.setenv("ETUDE_PROGRESS", "1")
    model, optimizer, generator, step = problem()
    train_loop(step, steps=STEPS, model=model, optimizer=optimizer, kind="t", config={}, desc="fit", report_every=4)
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == ["fit: step 4/10", "fit: step 8/10", "fit: step 10/10"]
    assert all("loss" in line and "steps/s" in line for line in lines)
    monkeypatch.setenv("ETUDE_PROGRESS", "0")
    train_loop(step, steps=2, model=model, optimizer=optimizer, kind="t", config={}, desc="fit")
    assert capsys.readouterr().err == ""


def test_the_loss_of_every_step_is_logged_to_csv(tmp_path):
    import csv

    _, result = run(None, log_dir=tmp_path / "logs", metrics=lambda: {"extra": 1.0})
    (table,) = (tmp_path / "logs").rglob("metrics.csv")
    rows = list(csv.DictReader(table.open()))
    assert [float(r["loss"]) for r in rows] == pytest.approx(result.losses)
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1)) and rows[0]["extra"] == "1.0"


def test_the_loop_refuses_state_under_its_own_names():
    model, optimizer, _, step = problem()
    with pytest.raises(BadInputError, match="loop's own"):
        train_loop(step, steps=1, model=model, optimizer=optimizer, kind="t", config={}, state={"step": 1})
