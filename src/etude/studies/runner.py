"""Run studies (and seeds) one after another or in parallel worker processes.

A study that crashes is recorded and the others still run. With several seeds each study's
results go to ``<out>/<study>/seed-<k>/``; with one seed to ``<out>/<study>/`` as before.
``jobs > 1`` runs the same per-task code in spawned worker processes (`etude.studies.parallel`),
so results are identical to ``jobs = 1``.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from etude.errors import BadInputError, CheckpointError
from etude.runtime import MAX_SEED, seed_everything, set_threads
from etude.studies.protocol import PRESETS, Result, Study, versions
from etude.studies import registry
from etude.studies.registry import get_study, study_names

__all__ = ["Task", "crashed_result", "finished_result", "load_result", "run_studies", "run_task", "study_dir_for"]

MAX_JOBS = 256
"""Upper bound of ``jobs``: more worker processes than this is a typo, not a machine."""


def load_result(study_dir: Path) -> Result | None:
    """The result stored in `study_dir/result.json`, or None when it is missing or unreadable."""
    path = Path(study_dir) / "result.json"
    try:
        return Result.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, BadInputError):
        return None


def study_dir_for(out: Path, study: str, seed: int, several_seeds: bool) -> Path:
    """Where one (study, seed) writes: ``out/study`` for a single seed, ``out/study/seed-k`` otherwise."""
    return Path(out) / study / f"seed-{seed}" if several_seeds else Path(out) / study


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
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.study} seed {self.seed}"


def _load_study(spec: str) -> Study:
    import importlib

    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()


def run_task(task: Task, default_threads: int | None = None) -> Result:
    """Run one (study, seed), write its result.json and return it.

    A finished result with the same preset, seed and settings is kept when resuming. A study's
    exception is recorded as a crash; `KeyboardInterrupt`, `BadInputError` and
    `CheckpointError` propagate (the user's to fix). ``default_threads`` applies to studies
    that ask for no thread count.
    """
    study = _load_study(task.spec)
    settings = study.preset(task.preset, dict(task.overrides))
    study_dir = Path(task.study_dir)
    wanted = {"preset": task.preset, **_as_settings(settings)}
    previous = finished_result(task, study)
    if previous is not None:
        return previous
    start = time.perf_counter()
    seed_everything(task.seed)
    threads = torch.get_num_threads()
    set_threads(study.threads if study.threads is not None else default_threads)
    try:
        result = study.run(settings, task.seed, study_dir, resume=task.resume)
    except (KeyboardInterrupt, BadInputError, CheckpointError):
        raise  # the user's to fix (bad override, corrupt checkpoint on --resume): exit 2 at the CLI
    except Exception as exc:  # a crashing study is reported; the others still run
        result = crashed_result(study, task, "".join(traceback.format_exception_only(type(exc), exc)).strip()
                                + "\n" + traceback.format_exc(limit=-3))
    finally:
        torch.set_num_threads(threads)
    result.preset, result.seed = task.preset, task.seed
    result.wall_time_s = time.perf_counter() - start
    result.settings = wanted
    result.versions = versions()
    result.write(study_dir)
    return result


def finished_result(task: Task, study: Study | None = None) -> Result | None:
    """When resuming, the stored result of `task` if it finished with the same preset, seed and settings."""
    if not task.resume:
        return None
    study = study or _load_study(task.spec)
    wanted = {"preset": task.preset, **_as_settings(study.preset(task.preset, dict(task.overrides)))}
    previous = load_result(Path(task.study_dir))
    if (previous is not None and previous.status == "ok"
            and (previous.preset, previous.seed) == (task.preset, task.seed)
            and previous.settings == json.loads(json.dumps(wanted))):
        return previous
    return None


def crashed_result(study: Study, task: Task, error: str) -> Result:
    """The result recorded for a study that crashed (or whose worker process died)."""
    return Result(study.name, task.preset, task.seed, claims=study.claims(), status="crashed", error=error)


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    if not seeds:
        raise BadInputError("seeds must name at least one seed, got none")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise BadInputError(f"seed must be an int in [0, {MAX_SEED}], got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise BadInputError(f"seeds must be distinct, got {seeds}")
    return seeds


def run_studies(
    names: Sequence[str] | None,
    preset: str = "quick",
    seed: int | Sequence[int] = 0,
    out: str | Path = "runs",
    *,
    resume: bool = False,
    overrides: dict[str, str] | None = None,
    jobs: int = 1,
) -> list[Result]:
    """Run the named studies (all when empty) for each seed and write a result.json per (study, seed).

    :param seed: one seed, or a sequence of distinct seeds (then ``<out>/<study>/seed-<k>/``).
    :param resume: keep a finished result (same preset, seed, settings); continue unfinished
        ones from their checkpoints.
    :param overrides: preset fields to set, for exactly one study.
    :param jobs: worker processes; 1 runs everything in this process.
    :returns: results in (study, seed) order, whatever order they finished in.
    """
    if preset not in PRESETS:
        raise BadInputError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    several = isinstance(seed, (list, tuple))
    seeds = _check_seeds(list(seed) if several else [seed])  # type: ignore[arg-type]
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise BadInputError(f"jobs must be an int in [1, {MAX_JOBS}], got {jobs!r}")
    selected = list(names) if names else study_names()
    studies = [get_study(name) for name in selected]  # unknown names fail before anything runs
    if overrides and len(studies) != 1:
        raise BadInputError("--set overrides apply to one study at a time; name exactly one study")
    for study in studies:  # a missing preset or a bad override fails before anything runs
        study.preset(preset, overrides)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_info: dict[str, Any] = {
        "preset": preset, "seed": seeds[0], "seeds": seeds, "jobs": jobs, "studies": selected,
        "overrides": overrides or {}, "versions": versions(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out / "run.json").write_text(json.dumps(run_info, indent=2))
    frozen = tuple(sorted((overrides or {}).items()))
    tasks = [Task(name, registry.STUDIES[name], preset, s, str(study_dir_for(out, name, s, several)), resume, frozen)
             for name in selected for s in seeds]
    if jobs == 1:
        return [run_task(task) for task in tasks]
    done = {i: r for i, r in enumerate(finished_result(task) for task in tasks) if r is not None}
    todo = [i for i in range(len(tasks)) if i not in done]
    if len(todo) <= 1:
        return [done[i] if i in done else run_task(tasks[i]) for i in range(len(tasks))]
    from etude.studies.parallel import run_parallel

    done.update(zip(todo, run_parallel([tasks[i] for i in todo], jobs)))
    return [done[i] for i in range(len(tasks))]


def _as_settings(preset: object) -> dict:
    import dataclasses

    return dataclasses.asdict(preset) if dataclasses.is_dataclass(preset) else {}
