"""Run studies (and seeds) one after another or in parallel worker processes.

A study that crashes is recorded and the others still run. With several seeds each study's
results go to ``<out>/<study>/seed-<k>/``; with one seed to ``<out>/<study>/`` as before.
``jobs > 1`` runs the same per-task code in spawned worker processes (`etude.studies.parallel`),
so results are identical to ``jobs = 1``. A study that trains through Lightning Fabric gets a
launched ``fabric`` (one per process and settings) when the CLI's ``--devices``/``--strategy``/
``--precision`` or its preset ask for one; under DDP only rank 0 writes.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from etude.errors import BadInputError, CheckpointError
from etude.runtime import MAX_SEED, Distributed, is_rank_zero, seed_everything, set_threads, world_size
from etude.runtime.files import ensure_dir, write_atomic
from etude.studies import registry
from etude.studies.protocol import PRESETS, Result, Study, versions
from etude.studies.registry import get_study, load_study, study_names
from etude.validation import check_int

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
    distributed: Distributed | None = None
    """Fabric settings for a study that trains through Fabric; None runs plain PyTorch."""

    @property
    def label(self) -> str:
        return f"{self.study} seed {self.seed}"


def run_task(task: Task, default_threads: int | None = None) -> Result:
    """Run one (study, seed), write its result.json and return it.

    A finished result with the same preset, seed and settings is kept when resuming. A study's
    exception is recorded as a crash; `KeyboardInterrupt`, `BadInputError` and
    `CheckpointError` propagate (the user's to fix). ``default_threads`` applies to studies
    that ask for no thread count.
    """
    study = load_study(task.spec)
    settings = study.preset(task.preset, dict(task.overrides))
    study_dir = Path(task.study_dir)
    wanted = _wanted(task, settings)
    fabric = _fabric(task.distributed)
    previous = finished_result(task, study)
    if fabric is not None and fabric.world_size > 1:
        previous = fabric.broadcast(previous, src=0)  # every rank keeps or reruns as rank 0 does
    if previous is not None:
        return previous
    start = time.perf_counter()
    seed_everything(task.seed)
    threads = torch.get_num_threads()
    set_threads(study.threads if study.threads is not None else default_threads)
    try:
        kwargs = {} if fabric is None else {"fabric": fabric}
        result = study.run(settings, task.seed, study_dir, resume=task.resume, **kwargs)
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


def _wanted(task: Task, settings: object) -> dict[str, Any]:
    """The settings a result records (and a finished result must match to be kept on resume)."""
    wanted = {"preset": task.preset, **_as_settings(settings)}
    if task.distributed is not None:
        wanted["fabric"] = {k: v for k, v in task.distributed.as_dict().items() if k in ("accelerator", "precision")}
    return wanted


_FABRICS: dict[Distributed, Any] = {}
"""The launched Fabric of each settings in this process: Fabric's launcher starts the other ranks once."""


def _fabric(settings: Distributed | None) -> Any:
    if settings is None:
        return None
    if settings not in _FABRICS:
        _FABRICS[settings] = settings.launch()
    return _FABRICS[settings]


def _close_fabrics() -> None:
    """Tear down this process's fabrics (a gloo run aborts at exit otherwise) and wait for launched ranks."""
    from etude.runtime import teardown, wait_for_ranks

    fabrics = list(_FABRICS.values())
    _FABRICS.clear()
    for fabric in fabrics:
        teardown(fabric)
    for fabric in fabrics:
        wait_for_ranks(fabric)


def _distributed_for(study: Study, settings: object, given: Mapping[str, Any]) -> Distributed | None:
    """The Fabric settings of one task: the preset's ``device``/``precision``, then the CLI's options."""
    if not study.trains_with_fabric:
        if given:
            fabric_studies = [n for n in study_names() if get_study(n).trains_with_fabric]
            raise BadInputError(
                f"study {study.name!r} does not train through Fabric yet; --devices, --strategy "
                f"and --precision apply to {', '.join(fabric_studies)}"
            )
        return None
    defaults = {
        "accelerator": getattr(settings, "device", "auto"),
        "precision": getattr(settings, "precision", "32-true"),
    }
    if not given and defaults == {"accelerator": "cpu", "precision": "32-true"}:
        return None  # plain PyTorch on the CPU
    return Distributed(**{**defaults, **given})


def finished_result(task: Task, study: Study | None = None) -> Result | None:
    """When resuming, the stored result of `task` if it finished with the same preset, seed and settings."""
    if not task.resume:
        return None
    study = study or load_study(task.spec)
    wanted = _wanted(task, study.preset(task.preset, dict(task.overrides)))
    previous = load_result(Path(task.study_dir))
    if (
        previous is not None
        and previous.status == "ok"
        and (previous.preset, previous.seed) == (task.preset, task.seed)
        and previous.settings == json.loads(json.dumps(wanted))
    ):
        return previous
    return None


def crashed_result(study: Study, task: Task, error: str) -> Result:
    """The result recorded for a study that crashed (or whose worker process died)."""
    return Result(study.name, task.preset, task.seed, claims=study.claims(), status="crashed", error=error)


def _check_seeds(seeds: Sequence[object]) -> list[int]:
    if not seeds:
        raise BadInputError("seeds must name at least one seed, got none")
    checked: list[int] = []
    for seed in seeds:
        checked.append(check_int("seed", seed, 0, MAX_SEED))
    if len(set(checked)) != len(checked):
        raise BadInputError(f"seeds must be distinct, got {seeds}")
    return checked


def run_studies(
    names: Sequence[str] | None,
    preset: str = "quick",
    seed: int | Sequence[int] = 0,
    out: str | Path = "runs",
    *,
    resume: bool = False,
    overrides: dict[str, str] | None = None,
    jobs: int = 1,
    distributed: Mapping[str, Any] | None = None,
) -> list[Result]:
    """Run the named studies (all when empty) for each seed and write a result.json per (study, seed).

    :param seed: one seed, or a sequence of distinct seeds (then ``<out>/<study>/seed-<k>/``).
    :param resume: keep a finished result (same preset, seed, settings); continue unfinished
        ones from their checkpoints.
    :param overrides: preset fields to set, for exactly one study.
    :param jobs: worker processes; 1 runs everything in this process.
    :param distributed: ``Distributed`` fields (devices, strategy, precision, num_nodes, accelerator)
        for the studies that train through Fabric; with several ranks only rank 0 writes.
    :returns: results in (study, seed) order, whatever order they finished in.
    """
    if preset not in PRESETS:
        raise BadInputError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    several = isinstance(seed, (list, tuple))
    seeds = _check_seeds(list(seed) if isinstance(seed, (list, tuple)) else [seed])
    check_int("jobs", jobs, 1, MAX_JOBS)
    selected = list(names) if names else study_names()
    studies = [get_study(name) for name in selected]  # unknown names fail before anything runs
    if not names:  # every study: those without this preset tier are skipped, and said so
        lacking = [study.name for study in studies if preset not in study.presets]
        if lacking:
            print(f"etude: no {preset!r} preset in {', '.join(lacking)}; skipped", file=sys.stderr)
        studies = [study for study in studies if preset in study.presets]
        selected = [study.name for study in studies]
        if not studies:
            raise BadInputError(f"no study has a {preset!r} preset")
    if overrides and len(studies) != 1:
        raise BadInputError("--set overrides apply to one study at a time; name exactly one study")
    for study in studies:  # a missing preset or a bad override fails before anything runs
        study.preset(preset, overrides)
    given = dict(distributed or {})
    if given and jobs > 1:
        raise BadInputError(
            f"--devices, --strategy and --precision run one process per device; they cannot be "
            f"combined with --jobs {jobs} (use --jobs 1)"
        )
    if given:
        Distributed(**given)  # a bad value fails here, with its own message, before anything runs
    if not given and world_size() > 1:
        raise BadInputError(
            f"launched as {world_size()} processes (WORLD_SIZE); pass --strategy ddp and --devices "
            "<processes per node> so that they train together"
        )
    fabric_of = {name: _distributed_for(s, s.preset(preset, overrides), given) for name, s in zip(selected, studies)}
    if given and len(set(fabric_of.values())) > 1:
        raise BadInputError(
            "these studies' presets ask for different Fabric settings "
            f"({sorted(str(d) for d in set(fabric_of.values()))}); run them one at a time"
        )
    if not str(out).strip():  # Path("") is ".": it would quietly run in the current folder
        raise BadInputError("--out must name a folder, got an empty string")
    out = Path(out)
    writes = is_rank_zero()  # before a launch: torchrun's RANK, or LOCAL_RANK in a rank Fabric started
    if writes:
        out = ensure_dir(out, what="--out")
    run_info: dict[str, Any] = {
        "preset": preset,
        "seed": seeds[0],
        "seeds": seeds,
        "jobs": jobs,
        "studies": selected,
        "overrides": overrides or {},
        "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if given:
        run_info["distributed"] = given
    if writes:
        write_atomic(out / "run.json", json.dumps(run_info, indent=2), what="--out")
    frozen = tuple(sorted((overrides or {}).items()))
    tasks = [
        Task(
            name,
            registry.STUDIES[name],
            preset,
            s,
            str(study_dir_for(out, name, s, several)),
            resume,
            frozen,
            fabric_of[name],
        )
        for name in selected
        for s in seeds
    ]
    if jobs == 1:
        try:
            return [run_task(task) for task in tasks]
        finally:
            _close_fabrics()
    done = {i: r for i, r in enumerate(finished_result(task) for task in tasks) if r is not None}
    todo = [i for i in range(len(tasks)) if i not in done]
    if len(todo) <= 1:
        return [done[i] if i in done else run_task(tasks[i]) for i in range(len(tasks))]
    from etude.studies.parallel import run_parallel

    done.update(zip(todo, run_parallel([tasks[i] for i in todo], jobs)))
    return [done[i] for i in range(len(tasks))]


def _as_settings(preset: object) -> dict:
    import dataclasses

    return dataclasses.asdict(preset) if dataclasses.is_dataclass(preset) and not isinstance(preset, type) else {}
