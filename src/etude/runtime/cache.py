"""Data caches: NumPy arrays in one ``.npz`` file, written atomically, checked on every read.

DESIGN: data caches (parsed corpus, rendered audio) live under ``$ETUDE_CACHE`` (default
``~/.cache/etude``) with a content hash in the name, and a corrupt entry is rebuilt, not
trusted. A file holds the caller's arrays plus ``key`` (the content hash it was built for) and
``checksum`` (SHA-256 over every array's name, dtype, shape and bytes); ``load_arrays`` refuses a
file whose key, checksum or array names differ.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from etude.errors import BadInputError

__all__ = ["CacheMismatch", "cache_dir", "check_entry", "load_arrays", "save_arrays"]


class CacheMismatch(ValueError):
    """A cache file is readable but not what was asked for (key, checksum or contents)."""


def cache_dir() -> Path:
    """``$ETUDE_CACHE``, or ``~/.cache/etude`` when it is unset or empty."""
    return Path(os.environ.get("ETUDE_CACHE") or Path.home() / ".cache" / "etude")


def check_entry(path: str | os.PathLike[str]) -> Path:
    """``path`` when a cache file can live there; a folder in its place (or a file in place of
    its folder) raises BadInputError naming it, since a cache must not delete the user's folders."""
    target = Path(path)
    if target.is_dir():
        raise BadInputError(f"cache entry {target} is a folder, not a file; remove it or set ETUDE_CACHE elsewhere")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise BadInputError(f"cache folder {parent} is a file; remove it or set ETUDE_CACHE elsewhere")
            break
    return target


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_arrays(path: str | os.PathLike[str], key: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (no object dtypes) with ``key`` and a checksum: temp file, fsync, rename."""
    target = check_entry(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot create cache folder {target.parent}: {exc.strerror or exc}") from exc
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as handle:
            payload: dict[str, Any] = {"key": np.array(key), "checksum": np.array(_checksum(arrays)), **arrays}
            np.savez(handle, **payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def load_arrays(path: str | os.PathLike[str], key: str, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of a cache file written by ``save_arrays`` for ``key``.

    :raises CacheMismatch: when the key, the set of arrays or the checksum differ.
    :raises OSError, ValueError, zipfile.BadZipFile, EOFError: when the file is unreadable.
    """
    with np.load(path, allow_pickle=False) as stored:
        files = set(stored.files)
        if files != {*names, "key", "checksum"}:
            raise CacheMismatch(f"arrays {sorted(files)} differ from the expected {sorted(names)}")
        if str(stored["key"]) != key:
            raise CacheMismatch("built for other sources (content hash differs)")
        arrays = {name: stored[name] for name in names}
        if str(stored["checksum"]) != _checksum(arrays):
            raise CacheMismatch("checksum mismatch")
    return arrays
