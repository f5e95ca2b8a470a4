"""One (study, seed) task: what a worker process needs to run it, and the code that runs it.

`run_task` is the code of a sequential run; `etude.studies.parallel` runs the same function in
worker processes, so results are identical for any ``--jobs``. A task carries its preset resolved
once (the dataclass after ``--set``), so no process turns the preset's name into settings again.
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from etude.errors import BadInputError, CheckpointError
from etude.runtime import Distributed, is_rank_zero, seed_everything, set_threads
from etude.studies.protocol import SCHEMA_VERSION, Result, Study, versions
from etude.studies.record import write_record
from etude.studies.registry import load_study

__all__ = ["Task", "crashed_result", "finished_result", "load_result", "run_record", "run_task"]


def load_result(study_dir: Path) -> Result | None:
    """The result stored in `study_dir/result.json`, or None when it is missing or unreadable."""
    path = Path(study_dir) / "result.json"
    try:
        return Result.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, BadInputError):
        return None


@dataclass(frozen=True)
class Task:
    """One (study, seed) to run: everything a worker process needs, picklable."""

    study: str
    spec: str
    """'module:Class' of the study, as in the registry (a worker imports it)."""
    preset: str
    seed: int
    study_dir: str
    resume: bool
    settings: Any
    """The study's preset dataclass, resolved once (overrides applied and validated)."""
    distributed: Distributed | None = None
    """Fabric settings for a study that trains through Fabric; None runs plain PyTorch."""

    @property
    def label(self) -> str:
        return f"{self.study} seed {self.seed}"


def _as_settings(preset: object) -> dict[str, Any]:
    return dataclasses.asdict(preset) if dataclasses.is_dataclass(preset) and not isinstance(preset, type) else {}


def _fabric_settings(task: Task) -> dict[str, Any]:
    """The Fabric settings that shape results: accelerator and precision (plain PyTorch is cpu, 32-true)."""
    if task.distributed is None:
        return {"accelerator": "cpu", "precision": "32-true"}
    given = task.distributed.as_dict()
    return {k: given[k] for k in ("accelerator", "precision")}


def run_record(task: Task, study: Study) -> dict[str, Any]:
    """Everything that shapes the task's result, as ``run-record.json`` stores it (see `etude.studies.record`)."""
    from etude import __version__

    return {
        "study": task.study,
        "preset": task.preset,
        "seed": task.seed,
        "settings": _as_settings(task.settings),
        "data": study.data_identity(task.settings),
        "fabric": _fabric_settings(task),
        "schema_version": SCHEMA_VERSION,
        "etude": __version__,
    }


def _wanted(task: Task) -> dict[str, Any]:
    """The settings a result records (and a finished result must match to be kept on resume)."""
    wanted = {"preset": task.preset, **_as_settings(task.settings)}
    if task.distributed is not None:
        wanted["fabric"] = {k: v for k, v in task.distributed.as_dict().items() if k in ("accelerator", "precision")}
    return wanted


def run_task(task: Task, default_threads: int | None = None) -> Result:
    """Run one (study, seed), write its run record and result.json and return the result.

    A finished result with the same preset, seed and settings is kept when resuming. A study's
    exception is recorded as a crash; `KeyboardInterrupt`, `BadInputError` and
    `CheckpointError` propagate (the user's to fix). ``default_threads`` applies to studies
    that ask for no thread count.
    """
    study = load_study(task.spec)
    study_dir = Path(task.study_dir)
    wanted = _wanted(task)
    fabric = _fabric(task.distributed)
    previous = finished_result(task)
    if fabric is not None and fabric.world_size > 1:
        previous = fabric.broadcast(previous, src=0)  # every rank keeps or reruns as rank 0 does
    if previous is not None:
        return previous
    if is_rank_zero(fabric):
        write_record(study_dir, run_record(task, study))
    start = time.perf_counter()
    seed_everything(task.seed)
    threads = torch.get_num_threads()
    set_threads(study.threads if study.threads is not None else default_threads)
    try:
        kwargs = {} if fabric is None else {"fabric": fabric}
        result = study.run(task.settings, task.seed, study_dir, resume=task.resume, **kwargs)
    except (KeyboardInterrupt, BadInputError, CheckpointError):
        raise  # the user's to fix (bad override, corrupt checkpoint on --resume): exit 2 at the CLI
    except Exception as exc:  # a crashing study is reported; the others still run
        result = crashed_result(
            study,
            task,
            "".join(traceback.format_exception_only(type(exc), exc)).strip() + "\n" + traceback.format_exc(limit=-3),
        )
    finally:
        torch.set_num_threads(threads)
    result.preset, result.seed = task.preset, task.seed
    result.wall_time_s = time.perf_counter() - start
    result.settings = wanted
    result.versions = versions()
    if is_rank_zero(fabric):
        result.write(study_dir)
    return result


_FABRICS: dict[Distributed, Any] = {}
"""The launched Fabric of each settings in this process: Fabric's launcher starts the other ranks once."""


def _fabric(settings: Distributed | None) -> Any:
    if settings is None:
        return None
    if settings not in _FABRICS:
        _FABRICS[settings] = settings.launch()
    return _FABRICS[settings]


def close_fabrics() -> None:
    """Tear down this process's fabrics (a gloo run aborts at exit otherwise) and wait for launched ranks."""
    from etude.runtime import teardown, wait_for_ranks

    fabrics = list(_FABRICS.values())
    _FABRICS.clear()
    for fabric in fabrics:
        teardown(fabric)
    for fabric in fabrics:
        wait_for_ranks(fabric)


def finished_result(task: Task) -> Result | None:
    """When resuming, the stored result of `task` if it finished with the same preset, seed and settings."""
    if not task.resume:
        return None
    previous = load_result(Path(task.study_dir))
    if (
        previous is not None
        and previous.status == "ok"
        and (previous.preset, previous.seed) == (task.preset, task.seed)
        and previous.settings == json.loads(json.dumps(_wanted(task)))
    ):
        return previous
    return None


def crashed_result(study: Study, task: Task, error: str) -> Result:
    """The result recorded for a study that crashed (or whose worker process died)."""
    return Result(study.name, task.preset, task.seed, claims=study.claims(), status="crashed", error=error)
