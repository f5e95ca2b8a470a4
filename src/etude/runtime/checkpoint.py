"""Atomic checkpoint files and safe, validated loading.

``save_checkpoint`` never leaves a half-written file at the target path: it writes a
temporary sibling, fsyncs it, renames it over the target and fsyncs the directory, so a
crash at any moment leaves either the old checkpoint or the new one. ``load_checkpoint``
unpickles with ``weights_only=True`` (tensors, numbers, strings, lists, tuples, dicts;
``torch.Generator`` states are ByteTensors) and turns every failure into a one-line
``CheckpointError``.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from etude.errors import BadInputError, CheckpointError

__all__ = ["latest_checkpoint", "load_checkpoint", "save_checkpoint"]

_FIX = "delete it or run without --resume"
_TMP_SUFFIX = ".tmp"


def _fsync_dir(directory: Path) -> None:
    """Flush a directory entry to disk where the platform allows opening directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically, creating parent directories.

    The temporary file ``.<name>.<random>.tmp`` lives next to ``path`` and is removed if
    anything fails; the original exception is then re-raised.

    :param path: target file, conventionally ``*.pt``.
    :param state: a dict of tensors, numbers, strings, lists and dicts.
    :raises BadInputError: when ``state`` is not a dict.
    """
    if not isinstance(state, dict):
        raise BadInputError(f"state must be a dict, got {type(state).__name__}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}{_TMP_SUFFIX}")
    try:
        with open(tmp, "xb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _reason(error: BaseException, limit: int = 120) -> str:
    """A short one-line reason for a failed ``torch.load``.

    For a refused unpickling it keeps only torch's ``WeightsUnpickler error:`` sentence
    (torch's message is many lines of advice with terminal colour codes).
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    marker = "WeightsUnpickler error:"
    if marker in text:
        paragraph = re.split(r"\n\s*\n", text.split(marker, 1)[1].strip())[0]
        text = "not plain data: " + " ".join(paragraph.split()).split(". ")[0]
    else:
        text = next((line.strip() for line in text.splitlines() if line.strip()), "")
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any, limit: int = 60) -> str:
    """A one-line ``repr`` shortened to ``limit`` characters."""
    text = "nothing" if value is _ABSENT else " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_ABSENT = object()


def _difference(stored: Any, expected: Any, where: str) -> tuple[str, Any, Any] | None:
    """First place ``stored`` and ``expected`` differ, as (dotted path, stored, expected).

    Dicts are compared key by key, lists and tuples item by item (a list equals the tuple
    with the same items), tensors with ``torch.equal`` and dtype, numbers and the rest with ``==``.
    """
    if isinstance(expected, Mapping) and isinstance(stored, Mapping):
        for key in sorted(set(stored) | set(expected), key=str):
            a, b = stored.get(key, _ABSENT), expected.get(key, _ABSENT)
            found = _difference(a, b, f"{where}.{key}")
            if found is not None:
                return found
        return None
    seqs = (list, tuple)
    if isinstance(expected, seqs) and isinstance(stored, seqs) and len(stored) == len(expected):
        for i, (a, b) in enumerate(zip(stored, expected)):
            found = _difference(a, b, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    if isinstance(expected, torch.Tensor) and isinstance(stored, torch.Tensor):
        same = expected.dtype == stored.dtype and torch.equal(expected.cpu(), stored.cpu())
    elif isinstance(expected, torch.Tensor) or isinstance(stored, torch.Tensor):
        same = False
    elif isinstance(expected, (int, float)) and isinstance(stored, (int, float)):
        same = stored == expected
    else:
        same = type(stored) is type(expected) and stored == expected
    return None if same else (where, stored, expected)


def load_checkpoint(
    path: str | os.PathLike[str], *, expect: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``, onto the CPU.

    :param path: the checkpoint file.
    :param expect: values the checkpoint must hold, e.g. ``{"kind": "lola", "config": {...}}``;
        each key must be stored and compare equal (recursively) to its expected value.
    :returns: the stored dict.
    :raises CheckpointError: (one-line message naming ``path``) when the file is missing,
        truncated, not a torch checkpoint, not a dict, or from another run (``expect``).
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file} is missing; run without --resume")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise CheckpointError(
            f"checkpoint {file} is corrupt or unreadable ({_reason(error)}); {_FIX}"
        ) from error
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {file} is corrupt: it holds a {type(state).__name__}, not a dict; {_FIX}"
        )
    for key, value in (expect or {}).items():
        if key not in state:
            raise CheckpointError(
                f"checkpoint {file} is from another run: it has no key {key!r}; {_FIX}"
            )
        found = _difference(state[key], value, key)
        if found is not None:
            where, stored, wanted = found
            raise CheckpointError(
                f"checkpoint {file} is from another run: {where} differs "
                f"(stored {_short(stored)}, expected {_short(wanted)}); {_FIX}"
            )
    return state


def latest_checkpoint(directory: str | os.PathLike[str], pattern: str = "*.pt") -> Path | None:
    """Most recently modified file in ``directory`` matching ``pattern``, or ``None``.

    Ties in modification time are broken by file name; temporary files left by an
    interrupted ``save_checkpoint`` are ignored. A missing directory gives ``None``.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return None
    files = [
        p for p in folder.glob(pattern) if p.is_file() and not p.name.endswith(_TMP_SUFFIX)
    ]
    if not files:
        return None
    return max(files, key=lambda p: (p.stat().st_mtime_ns, p.name))
