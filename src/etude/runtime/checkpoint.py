"""Atomic checkpoint files that prove their integrity, and safe, validated loading.

``save_checkpoint`` never leaves a half-written file at the target path: it writes a
uniquely named temporary sibling, fsyncs it, renames it over the target and fsyncs the
directory, so a crash at any moment leaves either the old checkpoint or the new one.

A file is one header line, ``ETUDE-CHECKPOINT 1 sha256=<64 hex digits>``, then the bytes of
``torch.save(state)``; the SHA-256 is over those bytes. ``load_checkpoint`` checks the hash
before unpickling, so a flipped byte anywhere is refused; it unpickles with
``weights_only=True`` (tensors, numbers, strings, lists, tuples, dicts; ``torch.Generator``
states are ByteTensors), refuses NaN or infinite floating-point tensors, and with ``like``
checks the shapes and dtypes of the resumed tensors against freshly built ones. Every failure
is a one-line ``CheckpointError`` that names the file.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from etude.errors import BadInputError, CheckpointError
from etude.runtime.files import TMP_SUFFIX as _TMP_SUFFIX
from etude.runtime.files import write_atomic

__all__ = ["HEADER", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

_FIX = "delete it or run without --resume"
HEADER = b"ETUDE-CHECKPOINT 1 sha256="
"""The start of every checkpoint file; 64 hex digits and a newline follow, then torch.save's bytes."""


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` with its SHA-256 to ``path`` atomically, creating parent directories.

    The temporary file ``.<name>.<random>.tmp`` lives next to ``path`` and is removed if
    anything fails.

    :param path: target file, conventionally ``*.pt``.
    :param state: a dict of tensors, numbers, strings, lists and dicts.
    :raises BadInputError: when ``state`` is not a dict, or the file cannot be written.
    """
    if not isinstance(state, dict):
        raise BadInputError(f"state must be a dict, got {type(state).__name__}")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode("ascii")
    write_atomic(path, HEADER + digest + b"\n" + payload, what="checkpoint")


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
    path: str | os.PathLike[str],
    *,
    expect: Mapping[str, Any] | None = None,
    like: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``, onto the CPU, after checking its hash.

    :param path: the checkpoint file.
    :param expect: values the checkpoint must hold, e.g. ``{"kind": "lola", "config": {...}}``;
        each key must be stored and compare equal (recursively) to its expected value.
    :param like: the resumed state as a freshly built run holds it, e.g. ``{"model":
        model.state_dict(), "optimizer": optimizer, "sampler": generator, "step": int}``: dicts must
        have the same keys, lists the same length, tensors the same shape and dtype, a generator a
        state it accepts, an optimizer a state dict that loads into it, and a type stands for any
        value of that type (see ``_mismatch``).
    :returns: the stored dict.
    :raises CheckpointError: (one-line message naming ``path``) when the file is missing,
        truncated, altered (hash), not a torch checkpoint, not a dict, from another run
        (``expect``), holds NaN or infinite tensors, or does not fit ``like``.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file} is missing; run without --resume")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise CheckpointError(f"checkpoint {file} is unreadable ({error.strerror or error}); {_FIX}") from error
    head, _, payload = data.partition(b"\n")
    if not head.startswith(HEADER) or len(head) != len(HEADER) + 64:
        raise CheckpointError(f"checkpoint {file} is corrupt or not written by etude (no content hash); {_FIX}")
    if hashlib.sha256(payload).hexdigest().encode("ascii") != head[len(HEADER) :]:
        raise CheckpointError(f"checkpoint {file} is corrupt: its content hash does not match; {_FIX}")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for damaged files
        raise CheckpointError(f"checkpoint {file} is corrupt or unreadable ({_reason(error)}); {_FIX}") from error
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {file} is corrupt: it holds a {type(state).__name__}, not a dict; {_FIX}")
    for key, value in (expect or {}).items():
        if key not in state:
            raise CheckpointError(f"checkpoint {file} is from another run: it has no key {key!r}; {_FIX}")
        found = _difference(state[key], value, key)
        if found is not None:
            where, stored, wanted = found
            raise CheckpointError(
                f"checkpoint {file} is from another run: {where} differs "
                f"(stored {_short(stored)}, expected {_short(wanted)}); {_FIX}"
            )
    bad = _nonfinite(state, "")
    if bad is not None:
        raise CheckpointError(f"checkpoint {file} holds NaN or infinite values in {bad}; {_FIX}")
    for key, template in (like or {}).items():
        misfit = _mismatch(state.get(key, _ABSENT), template, key)
        if misfit is not None:
            raise CheckpointError(f"checkpoint {file} does not fit this run: {misfit}; {_FIX}")
    return state


def _nonfinite(value: Any, where: str) -> str | None:
    """Dotted path of the first floating-point tensor holding NaN or inf, or None."""
    if isinstance(value, torch.Tensor):
        if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
            return where or "the state"
        return None
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _nonfinite(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def _mismatch(stored: Any, template: Any, where: str) -> str | None:
    """Why ``stored`` does not fit ``template``, or None.

    A dict template needs the same keys, a list or tuple the same length, item by item; a tensor the
    same shape and dtype; a ``torch.Generator`` a state that generator accepts (a uint8 tensor of its
    state's size); a ``torch.optim.Optimizer`` a state dict that loads into it (its param groups,
    each per-parameter tensor shaped like its parameter); a type any value of that type (``float``
    takes ints too, no type takes a bool unless it is ``bool``).
    """
    if stored is _ABSENT:
        return f"{where} is missing"
    if isinstance(template, torch.Generator):
        return _mismatch(stored, template.get_state(), where)
    if isinstance(template, torch.optim.Optimizer):
        return _optimizer_mismatch(stored, template, where)
    if isinstance(template, Mapping):
        if not isinstance(stored, Mapping):
            return f"{where} is {_kind(stored)}, expected a dict"
        missing, extra = set(template) - set(stored), set(stored) - set(template)
        if missing or extra:
            return (
                f"{where} lacks {_short(sorted(missing, key=str))}"
                if missing
                else f"{where} has unexpected {_short(sorted(extra, key=str))}"
            )
        for key in template:
            found = _mismatch(stored[key], template[key], f"{where}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(template, (list, tuple)):
        if not isinstance(stored, (list, tuple)):
            return f"{where} is {_kind(stored)}, expected a list"
        if len(stored) != len(template):
            return f"{where} holds {len(stored)} items, expected {len(template)}"
        for i, (item, model) in enumerate(zip(stored, template)):
            found = _mismatch(item, model, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    if isinstance(template, torch.Tensor):
        if not isinstance(stored, torch.Tensor):
            return f"{where} is {_kind(stored)}, expected a tensor"
        if tuple(stored.shape) != tuple(template.shape) or stored.dtype != template.dtype:
            return (
                f"{where} has shape {tuple(stored.shape)} and dtype {stored.dtype}, "
                f"expected {tuple(template.shape)} and {template.dtype}"
            )
        return None
    if isinstance(template, type):
        allowed = (int, float) if template is float else template
        ok = isinstance(stored, allowed) and not (isinstance(stored, bool) and template is not bool)
        return None if ok else f"{where} is {_kind(stored)}, expected a {template.__name__}"
    return None


def _kind(value: Any) -> str:
    """'a str', 'a float32 tensor of shape (3,)', ... for a message."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _optimizer_mismatch(stored: Any, optimizer: torch.optim.Optimizer, where: str) -> str | None:
    """Why ``stored`` is not a state dict that loads into ``optimizer`` and continues it, or None."""
    fresh = optimizer.state_dict()
    if not isinstance(stored, Mapping) or set(stored) != set(fresh):
        return f"{where} is {_kind(stored)}, expected an optimizer state with keys {sorted(fresh)}"
    groups, state = stored["param_groups"], stored["state"]
    if not isinstance(groups, list) or len(groups) != len(fresh["param_groups"]):
        return f"{where}.param_groups holds {_short(groups)}, expected {len(fresh['param_groups'])} groups"
    params = {}
    for i, (group, model) in enumerate(zip(groups, fresh["param_groups"])):
        if not isinstance(group, Mapping) or not isinstance(group.get("params"), list):
            return f"{where}.param_groups[{i}] is {_kind(group)}, expected a dict with a params list"
        if len(group["params"]) != len(model["params"]):
            return (
                f"{where}.param_groups[{i}].params holds {len(group['params'])} items, expected {len(model['params'])}"
            )
        for key, value in model.items():
            if key != "params" and isinstance(value, (int, float)) and not isinstance(value, bool):
                found = _mismatch(group.get(key, _ABSENT), float, f"{where}.param_groups[{i}].{key}")
                if found is not None:
                    return found
        live = optimizer.param_groups[i]["params"]
        params.update(dict(zip(group["params"], live)))
    if not isinstance(state, Mapping):
        return f"{where}.state is {_kind(state)}, expected a dict"
    for index, entry in state.items():
        if index not in params:
            return f"{where}.state has an entry for parameter {index!r}, which no param group lists"
        if not isinstance(entry, Mapping):
            return f"{where}.state.{index} is {_kind(entry)}, expected a dict"
        param = params[index]
        for key, value in entry.items():
            name = f"{where}.state.{index}.{key}"
            if key == "step":
                if not (isinstance(value, (int, float)) and not isinstance(value, bool)) and not (
                    isinstance(value, torch.Tensor) and value.numel() == 1 and value.is_floating_point()
                ):
                    return f"{name} is {_kind(value)}, expected a step count"
            elif isinstance(value, torch.Tensor):
                if tuple(value.shape) != tuple(param.shape) or value.dtype != param.dtype:
                    return f"{name} has shape {tuple(value.shape)} and dtype {value.dtype}, expected {tuple(param.shape)} and {param.dtype}"
            elif value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                return f"{name} is {_kind(value)}, expected a tensor or a number"
    return None


def latest_checkpoint(directory: str | os.PathLike[str], pattern: str = "*.pt") -> Path | None:
    """Most recently modified file in ``directory`` matching ``pattern``, or ``None``.

    Ties in modification time are broken by file name; temporary files left by an
    interrupted ``save_checkpoint`` are ignored. A missing directory gives ``None``.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return None
    files = [p for p in folder.glob(pattern) if p.is_file() and not p.name.endswith(_TMP_SUFFIX)]
    if not files:
        return None
    return max(files, key=lambda p: (p.stat().st_mtime_ns, p.name))
