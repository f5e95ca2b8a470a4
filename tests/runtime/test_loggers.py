"""make_loggers: CSV always, TensorBoard when installed, one shared version folder."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from lightning_fabric.loggers import CSVLogger, TensorBoardLogger

from etude.errors import BadInputError, MissingDependencyError
from etude.runtime import make_fabric, make_loggers, teardown, tensorboard_available

LOSSES = [0.5, 0.25, 0.125]


def _log_through_fabric(loggers: list) -> None:
    """Log ``LOSSES`` at steps 0, 1, 2 through a CPU Fabric, then tear it down (flushes CSV)."""
    fabric = make_fabric(accelerator="cpu", loggers=loggers)
    for step, loss in enumerate(LOSSES):
        fabric.log_dict({"loss": loss, "lr": 0.1}, step=step)
    teardown(fabric)


def test_csv_file_holds_logged_values(tmp_path: Path) -> None:
    loggers = make_loggers(tmp_path, name="run", tensorboard=False)
    assert [type(logger) for logger in loggers] == [CSVLogger]
    _log_through_fabric(loggers)
    path = tmp_path / "run" / "version_0" / "metrics.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["loss"]) for row in rows] == LOSSES
    assert [int(row["step"]) for row in rows] == [0, 1, 2]
    assert {float(row["lr"]) for row in rows} == {0.1}


@pytest.mark.skipif(not tensorboard_available(), reason="tensorboard is not installed")
def test_tensorboard_events_hold_logged_values(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    loggers = make_loggers(tmp_path, tensorboard=None)
    assert [type(logger) for logger in loggers] == [CSVLogger, TensorBoardLogger]
    _log_through_fabric(loggers)
    folder = tmp_path / "train" / "version_0"
    events = sorted(folder.glob("events.out.tfevents.*"))
    assert len(events) == 1 and (folder / "metrics.csv").is_file()
    accumulator = EventAccumulator(str(events[0]))
    accumulator.Reload()
    scalars = accumulator.Scalars("loss")
    assert [s.step for s in scalars] == [0, 1, 2]
    assert [s.value for s in scalars] == pytest.approx(LOSSES, abs=1e-7)


def test_second_run_gets_next_version_for_both(tmp_path: Path) -> None:
    make_loggers(tmp_path, tensorboard=False)[0].log_metrics({"loss": 1.0}, step=0)
    loggers = make_loggers(tmp_path)
    assert {logger.version for logger in loggers} == {1}
    assert {Path(logger.log_dir) for logger in loggers} == {tmp_path / "train" / "version_1"}


def test_tensorboard_required_but_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("etude.runtime.loggers.tensorboard_available", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'etude\[tensorboard\]'"):
        make_loggers(tmp_path, tensorboard=True)
    assert [type(logger) for logger in make_loggers(tmp_path)] == [CSVLogger]


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"name": ""}, "name"), ({"tensorboard": "yes"}, "tensorboard")]
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        make_loggers(tmp_path, **kwargs)
