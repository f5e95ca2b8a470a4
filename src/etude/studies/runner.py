"""Run studies one after another; a study that crashes is recorded and the others still run."""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Sequence

from etude.errors import BadInputError, CheckpointError
import torch

from etude.runtime import MAX_SEED, seed_everything, set_threads
from etude.runtime.files import ensure_dir, write_atomic
from etude.studies.protocol import PRESETS, Result, versions
from etude.studies.registry import get_study, study_names

__all__ = ["run_studies", "load_result"]


def load_result(study_dir: Path) -> Result | None:
    """The result stored in `study_dir/result.json`, or None when it is missing or unreadable."""
    path = Path(study_dir) / "result.json"
    try:
        return Result.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, BadInputError):
        return None


def run_studies(
    names: Sequence[str] | None,
    preset: str = "quick",
    seed: int = 0,
    out: str | Path = "runs",
    *,
    resume: bool = False,
    overrides: dict[str, str] | None = None,
) -> list[Result]:
    """Run the named studies (all when empty) and write `<out>/<study>/result.json` for each.

    With `resume`, a study whose finished result (same preset and seed) is on disk is kept,
    and an unfinished one continues from its checkpoints. Overrides need exactly one study.
    """
    if preset not in PRESETS:
        raise BadInputError(f"unknown preset {preset!r}; expected one of {list(PRESETS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise BadInputError(f"seed must be an int in [0, {MAX_SEED}], got {seed!r}")
    selected = list(names) if names else study_names()
    studies = [get_study(name) for name in selected]  # unknown names fail before anything runs
    if overrides and len(studies) != 1:
        raise BadInputError("--set overrides apply to one study at a time; name exactly one study")
    presets = [study.preset(preset, overrides) for study in studies]
    out = ensure_dir(out, what="--out")
    run_info = {"preset": preset, "seed": seed, "studies": selected, "overrides": overrides or {},
                "versions": versions(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_atomic(out / "run.json", json.dumps(run_info, indent=2), what="--out")
    results = []
    for study, settings in zip(studies, presets):
        study_dir = out / study.name
        previous = load_result(study_dir) if resume else None
        wanted = {"preset": preset, **_as_settings(settings)}
        if (previous is not None and previous.status == "ok" and (previous.preset, previous.seed) == (preset, seed)
                and previous.settings == json.loads(json.dumps(wanted))):
            results.append(previous)
            continue
        start = time.perf_counter()
        seed_everything(seed)
        threads = torch.get_num_threads()
        set_threads(study.threads)
        try:
            result = study.run(settings, seed, study_dir, resume=resume)
        except (KeyboardInterrupt, BadInputError, CheckpointError):
            raise  # the user's to fix (bad override, corrupt checkpoint on --resume): exit 2 at the CLI
        except Exception as exc:  # a crashing study is reported; the others still run
            result = Result(study.name, preset, seed, claims=study.claims(), status="crashed",
                            error="".join(traceback.format_exception_only(type(exc), exc)).strip()
                            + "\n" + traceback.format_exc(limit=-3))
        finally:
            torch.set_num_threads(threads)
        result.preset, result.seed = preset, seed
        result.wall_time_s = time.perf_counter() - start
        result.settings = wanted
        result.versions = versions()
        result.write(study_dir)
        results.append(result)
    return results


def _as_settings(preset: object) -> dict:
    import dataclasses

    return dataclasses.asdict(preset) if dataclasses.is_dataclass(preset) else {}
