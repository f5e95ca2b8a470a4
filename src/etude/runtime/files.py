"""Atomic file writes with unique temporary names, and checks of output paths before work starts.

A write goes to ``.<name>.<random>.tmp`` beside the target, is flushed and fsynced, then renamed
over the target, and the directory is fsynced: a reader sees the old file or the new one, never
half of one, and two concurrent writers of the same target never share a temporary file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from etude.errors import BadInputError

__all__ = ["TMP_SUFFIX", "check_output_file", "ensure_dir", "fsync_dir", "open_atomic", "write_atomic"]

TMP_SUFFIX = ".tmp"
"""Suffix of the temporary files; readers that glob a folder skip names ending in it."""


def fsync_dir(directory: Path) -> None:
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


def write_atomic(path: str | os.PathLike[str], data: bytes | str, *, what: str = "file") -> Path:
    """Write ``data`` (str is UTF-8 encoded) to ``path`` atomically, creating parent folders.

    :param what: how the error message names the file (e.g. ``"--out"``).
    :raises BadInputError: when the target is a folder or its folder cannot be created or written.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with open_atomic(path, what=what) as handle:
        handle.write(payload)
    return Path(path)


@contextmanager
def open_atomic(path: str | os.PathLike[str], *, what: str = "file") -> Iterator[BinaryIO]:
    """A binary handle (seekable) whose contents replace ``path`` atomically when the block ends.

    For files too large to hold in memory (e.g. the token streams of ``etude.music.tokens``);
    ``write_atomic`` is this with one write. If the block raises, the target is left as it was.

    :raises BadInputError: as ``write_atomic``.
    """
    target = Path(path)
    if target.is_dir():
        raise BadInputError(f"{what} {str(target)!r} is a folder, not a file")
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}{TMP_SUFFIX}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise BadInputError(f"cannot write {what} {str(target)!r}: {exc.strerror or exc}") from exc
    except BaseException:
        _discard(tmp)
        raise
    fsync_dir(target.parent)


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def ensure_dir(path: str | os.PathLike[str], *, what: str = "--out") -> Path:
    """Create the folder ``path`` (and parents) and check that files can be written in it.

    :raises BadInputError: when ``path`` is empty, a file, or cannot be created or written.
    """
    if not str(path).strip():
        raise BadInputError(f"{what} must name a folder, got an empty string")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise BadInputError(f"{what} {str(folder)!r} is a file, not a folder; choose another {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot create {what} folder {str(folder)!r}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInputError(f"{what} folder {str(folder)!r} is not writable")
    return folder


def check_output_file(path: str | os.PathLike[str], *, what: str = "-o") -> Path:
    """Check, before any work, that the file ``path`` can be written (its folder is created).

    :raises BadInputError: when ``path`` is empty or a folder, or its folder cannot be written.
    """
    if not str(path).strip():
        raise BadInputError(f"{what} must name a file, got an empty string")
    target = Path(path)
    if target.is_dir():
        raise BadInputError(f"{what} {str(target)!r} is a folder, not a file")
    blocker = next((p for p in target.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise BadInputError(f"{what} {str(target)!r}: {str(blocker)!r} is a file, not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"{what} {str(target)!r}: cannot create its folder ({exc.strerror or exc})") from exc
    if not os.access(target.parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise BadInputError(f"{what} {str(target)!r} is not writable")
    return target
