"""What shapes a study's result, recorded in its folder, and the lock that keeps one run per folder.

Before a study runs, ``run-record.json`` in its folder records every preset field (after
``--set``), the preset's name, the seed, the data identity where the study has one
(``Study.data_identity``), the result schema and etude's version, and the Fabric accelerator and
precision. ``--resume`` first compares the record with the one this run would write and refuses
any difference in one line naming the field, so a resumed run continues the same run or does not
start: checkpoints, metrics and claims never mix two settings.

``run_lock`` holds an exclusive ``flock`` on ``<out>/.etude.lock`` for a whole ``etude reproduce``:
a second run into the same ``--out`` refuses at once instead of replacing the first one's files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from etude.errors import BadInputError, CheckpointError
from etude.runtime.files import write_atomic

__all__ = ["RECORD_NAME", "LOCK_NAME", "check_record", "run_lock", "write_record"]

RECORD_NAME = "run-record.json"
"""The file in each study folder that records what shaped its result."""
LOCK_NAME = ".etude.lock"
"""The lock file in ``--out`` held while a run writes there."""
_FIX = "rerun without --resume (it starts over) or with the recorded settings"


def _canonical(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples become lists, non-finite floats strings)."""
    from etude.studies.protocol import _jsonable

    return json.loads(json.dumps(_jsonable(value), default=str))


def _difference(stored: Any, wanted: Any, where: str) -> str | None:
    """The dotted path of the first difference between two JSON values, or None."""
    if isinstance(stored, dict) and isinstance(wanted, dict):
        for key in sorted(set(stored) | set(wanted)):
            if key not in stored or key not in wanted:
                return f"{where}.{key}" if where else key
            found = _difference(stored[key], wanted[key], f"{where}.{key}" if where else key)
            if found is not None:
                return found
        return None
    if stored != wanted or type(stored) is not type(wanted):
        return where or "the record"
    return None


def _lookup(record: Any, path: str) -> Any:
    for key in path.split("."):
        record = record.get(key, "(absent)") if isinstance(record, dict) else "(absent)"
    return record


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value) if not isinstance(value, str) or value != "(absent)" else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_record(study_dir: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Refuse to resume ``study_dir`` unless its stored record equals ``record`` field by field.

    A folder without a record resumes only when it holds nothing but a ``result.json`` (whose own
    settings decide whether it is kept): checkpoints without a record could be any run's.

    :raises CheckpointError: one line naming the folder and the first field that differs
        (``settings.lr``, ``seed``, ``fabric.precision``, ...), with both values.
    """
    folder = Path(study_dir)
    path = folder / RECORD_NAME
    if not path.is_file():
        leftovers = [p.name for p in folder.iterdir() if p.name != "result.json"] if folder.is_dir() else []
        if leftovers:
            raise CheckpointError(
                f"cannot resume {folder}: it holds files but no {RECORD_NAME} recording their settings; {_FIX}"
            )
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot resume {folder}: {RECORD_NAME} is unreadable ({exc}); {_FIX}") from None
    wanted = _canonical(dict(record))
    field = _difference(stored, wanted, "")
    if field is not None:
        raise CheckpointError(
            f"cannot resume {folder}: {field} differs (recorded {_short(_lookup(stored, field))}, "
            f"now {_short(_lookup(wanted, field))}); {_FIX}"
        )


def write_record(study_dir: str | os.PathLike[str], record: Mapping[str, Any]) -> Path:
    """Store ``record`` as ``study_dir/run-record.json`` (atomically)."""
    text = json.dumps(_canonical(dict(record)), indent=2, sort_keys=True)
    return write_atomic(Path(study_dir) / RECORD_NAME, text, what="run record")


@contextmanager
def run_lock(out: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` for the block; another holder makes it refuse in one line.

    The lock is an advisory ``flock`` on ``out/.etude.lock``, released when the process ends,
    however it ends; worker processes do not inherit it. Where ``fcntl`` is absent nothing is locked.

    :raises BadInputError: when another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(out) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise BadInputError(
                f"--out {str(out)!r} is in use by another etude run (pid {holder}); wait for it or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
