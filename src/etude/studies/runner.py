"""Run studies (and seeds) one after another or in parallel worker processes.

A study that crashes is recorded and the others still run. With several seeds each study's
results go to ``<out>/<study>/seed-<k>/``; with one seed to ``<out>/<study>/`` as before.
``jobs > 1`` runs the same per-task code in spawned worker processes (`etude.studies.parallel`),
so results are identical to ``jobs = 1``. A study that trains through Lightning Fabric gets a
launched ``fabric`` (one per process and settings) when the CLI's ``--devices``/``--strategy``/
``--precision`` or its preset ask for one; under DDP only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from etude.errors import BadInputError
from etude.runtime import MAX_SEED, Distributed, is_rank_zero, world_size
from etude.runtime.files import ensure_dir, write_atomic
from etude.studies import registry
from etude.studies.parallel import run_parallel
from etude.studies.protocol import PRESETS, Result, Study, versions
from etude.studies.record import check_record, run_lock
from etude.studies.registry import get_study, study_names
from etude.studies.task import Task, close_fabrics, crashed_result, finished_result, load_result, run_record, run_task
from etude.validation import check_int

__all__ = ["Task", "crashed_result", "finished_result", "load_result", "run_studies", "run_task", "study_dir_for"]

MAX_JOBS = 256
"""Upper bound of ``jobs``: more worker processes than this is a typo, not a machine."""


def study_dir_for(out: Path, study: str, seed: int, several_seeds: bool) -> Path:
    """Where one (study, seed) writes: ``out/study`` for a single seed, ``out/study/seed-k`` otherwise."""
    return Path(out) / study / f"seed-{seed}" if several_seeds else Path(out) / study


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


def _with_data(study: Study, settings: Any, data_dir: str | None, download: bool) -> Any:
    """The preset with ``data_dir`` set, after its datasets were found (or fetched with ``download``).

    Runs before anything is written in ``--out``: a missing dataset is one MissingDataError line.
    """
    names = study.datasets(settings)
    if (data_dir is not None or download) and not names:
        given = "--data-dir" if data_dir is not None else "--download"
        raise BadInputError(
            f"{given}: this preset of {study.name!r} reads bundled data"
            + (f" (dataset={settings.dataset!r})" if hasattr(settings, "dataset") else "")
            + "; name a dataset with --set dataset=NAME or use --preset full"
        )
    if data_dir is not None:
        if not str(data_dir).strip():
            raise BadInputError("--data-dir must name a folder, got an empty string")
        settings = dataclasses.replace(settings, data_dir=str(data_dir))
    if names:
        from etude.data import get_spec

        for name in names:
            get_spec(name).locate(getattr(settings, "data_dir", "") or None, download=download)
    return settings


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
    data_dir: str | None = None,
    download: bool = False,
) -> list[Result]:
    """Run the named studies (all when empty) for each seed and write a result.json per (study, seed).

    :param seed: one seed, or a sequence of distinct seeds (then ``<out>/<study>/seed-<k>/``).
    :param resume: keep a finished result (same preset, seed, settings); continue unfinished
        ones from their checkpoints.
    :param overrides: preset fields to set, for exactly one study.
    :param jobs: worker processes; 1 runs everything in this process.
    :param distributed: ``Distributed`` fields (devices, strategy, precision, num_nodes, accelerator)
        for the studies that train through Fabric; with several ranks only rank 0 writes.
    :param data_dir: where the presets' datasets are looked for first (their ``data_dir`` field).
    :param download: fetch a missing dataset (`etude.data`) before anything runs; never otherwise.
    :returns: results in (study, seed) order, whatever order they finished in.
    """
    if preset not in PRESETS:
        raise BadInputError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    several = isinstance(seed, (list, tuple))
    seeds = _check_seeds(list(seed) if isinstance(seed, (list, tuple)) else [seed])
    check_int("jobs", jobs, 1, MAX_JOBS)
    selected, studies = _select_studies(names, preset)
    if overrides and len(studies) != 1:
        raise BadInputError("--set overrides apply to one study at a time; name exactly one study")
    # the preset is resolved once (a missing preset or a bad override fails before anything runs)
    resolved = [study.preset(preset, overrides) for study in studies]
    resolved = [_with_data(study, settings, data_dir, download) for study, settings in zip(studies, resolved)]
    given = dict(distributed or {})
    _check_distributed(given, jobs)
    fabric_of = _fabric_settings(studies, resolved, given)
    if not str(out).strip():  # Path("") is ".": it would quietly run in the current folder
        raise BadInputError("--out must name a folder, got an empty string")
    out = Path(out)
    tasks = [
        Task(name, registry.STUDIES[name], preset, s, str(study_dir_for(out, name, s, several)), resume, settings, dist)
        for name, settings, dist in zip(selected, resolved, fabric_of)
        for s in seeds
    ]
    write_info = functools.partial(
        _write_run_info,
        preset=preset,
        seeds=seeds,
        jobs=jobs,
        selected=selected,
        overrides=overrides or {},
        given=given,
    )
    return _start_run(out, tasks, [s for s in studies for _ in seeds], resume=resume, jobs=jobs, write_info=write_info)


def _select_studies(names: Sequence[str] | None, preset: str) -> tuple[list[str], list[Study]]:
    """The studies to run, by name; all (those with a ``preset`` tier, the others said skipped) when empty."""
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
    return selected, studies


def _check_distributed(given: Mapping[str, Any], jobs: int) -> None:
    """Refuse CLI Fabric options with ``jobs > 1``, bad Fabric values, and an unconfigured multi-process launch."""
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


def _fabric_settings(studies: list[Study], resolved: list[Any], given: Mapping[str, Any]) -> list[Distributed | None]:
    """Each study's Fabric settings; with CLI options they must agree across the studies of one run."""
    fabric_of = [_distributed_for(s, settings, given) for s, settings in zip(studies, resolved)]
    if given and len(set(fabric_of)) > 1:
        raise BadInputError(
            "these studies' presets ask for different Fabric settings "
            f"({sorted(str(d) for d in set(fabric_of))}); run them one at a time"
        )
    return fabric_of


def _start_run(
    out: Path,
    tasks: list[Task],
    task_studies: list[Study],
    *,
    resume: bool,
    jobs: int,
    write_info: Callable[[Path], None],
) -> list[Result]:
    """Lock ``out`` (rank 0), check a resume against the earlier run, write run.json and run the tasks."""
    writes = is_rank_zero()  # before a launch: torchrun's RANK, or LOCAL_RANK in a rank Fabric started
    with ExitStack() as stack:
        if writes:
            out = ensure_dir(out, what="--out")
            stack.enter_context(run_lock(out))  # a second run into this --out refuses here
        if resume:  # a resume continues the same run or refuses, before anything runs
            for task, study in zip(tasks, task_studies):
                check_record(task.study_dir, run_record(task, study))
        if writes:
            write_info(out)
        return _run_tasks(tasks, jobs)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow exceptions


def _write_run_info(
    out: Path,
    preset: str,
    seeds: list[int],
    jobs: int,
    selected: list[str],
    overrides: dict[str, str],
    given: Mapping[str, Any],
) -> None:
    """Write ``out/run.json``: this run's settings, and in ``studies`` every study run into ``out`` so far."""
    run_info: dict[str, Any] = {
        "preset": preset,
        "seed": seeds[0],
        "seeds": seeds,
        "jobs": jobs,
        "studies": list(selected),
        "overrides": overrides,
        "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if given:
        run_info["distributed"] = dict(given)
    try:
        earlier = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = None
    if isinstance(earlier, dict):
        before = [n for n in earlier.get("studies", []) if isinstance(n, str) and n not in selected]
        run_info["studies"] = before + list(selected)
        history = earlier.get("earlier_runs", [])
        history = history if isinstance(history, list) else []
        summary = {k: earlier.get(k) for k in ("preset", "seeds", "studies", "overrides", "started")}
        run_info["earlier_runs"] = (history + [summary])[-_MAX_HISTORY:]
    write_atomic(out / "run.json", json.dumps(run_info, indent=2), what="--out")


_MAX_HISTORY = 100
"""Earlier runs into one ``--out`` that run.json summarises."""


def _run_tasks(tasks: list[Task], jobs: int) -> list[Result]:
    """Run the tasks, in this process (``jobs == 1``) or in worker processes; results in task order."""
    if jobs == 1:
        try:
            return [run_task(task) for task in tasks]
        finally:
            close_fabrics()
    done = {i: r for i, r in enumerate(finished_result(task) for task in tasks) if r is not None}
    todo = [i for i in range(len(tasks)) if i not in done]
    if len(todo) <= 1:
        return [done[i] if i in done else run_task(tasks[i]) for i in range(len(tasks))]
    done.update(zip(todo, run_parallel([tasks[i] for i in todo], jobs)))
    return [done[i] for i in range(len(tasks))]
