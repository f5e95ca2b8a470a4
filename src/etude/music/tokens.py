"""A user's folder of MIDI files as token streams: every file read once, cached as memory-mapped arrays.

Data for the Transformer autoencoder (Choi et al., ICML 2020, arXiv:1912.05537, Sec. 4: MAESTRO
performances as 10 ms event tokens, with the melody conditioning of Sec. 3.3) from any folder:
``tokenize_midi_dir`` reads every ``.mid``/``.midi`` file under it (recursively; hidden files and
folders, names starting with '.', are not read) with ``etude.music.read_midi``, encodes the
performance with ``PerformanceEncoding`` and its melody, the highest-pitch ``skyline`` of the notes
inside the melody encoding's pitch range (21-108), with ``MelodyEncoding``. A file that cannot
be read, has no notes or does not fit the encoding is left out; all such files together raise one
``SkippedFilesWarning`` ("skipped 3 of 120 files that could not be read (first: path: reason)").

The cache is a folder ``$ETUDE_CACHE/midi-<keys>keys-<files>-<hash>/`` (``etude.runtime.cache.cache_dir``):

- ``performance.npy`` (uint16), every file's performance ids one after the other, no BOS/EOS;
- ``step.npy`` (int32), for each performance id the 10 ms step at which it sounds (the sum of
  the time shifts before it in its file), so a window's time span needs no scan;
- ``melody.npy`` (uint8), every file's melody frame ids (10 frames per second);
- ``index.npz`` (``etude.runtime.cache.save_arrays``): the files' relative paths, the offsets
  ``[files + 1]`` of each file into both streams, the files left out with their reasons, and
  the SHA-256 of each stream. It is written last, so an entry without it is incomplete.

The streams are written as they are produced (``etude.runtime.files.open_atomic``: temp file,
fsync, rename), so tokenizing holds one file's tokens at a time, and opened with
``np.load(mmap_mode='r')``, so training pages in only the windows it reads.

Content hash: SHA-256 over the cache format, the MIDI reader's version, both encodings and, for every
file in path order, its relative path, its size and the SHA-256 of its bytes. Hashing the bytes
(not the modification time) costs one read of the folder per run (MIDI is small: MAESTRO's
200 hours are about 100 MB) but makes the cache follow the content: a file edited within one
second and at the same size is caught, and a copy of the folder (new times) reuses the cache.
A changed, added or removed file gives another hash and so a new entry; old entries stay until
the user deletes them. An entry whose index is unreadable or whose streams fail their SHA-256
is rebuilt with a ``CacheRebuiltWarning``, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from etude.errors import BadInputError, EtudeWarning, MissingDependencyError
from etude.music.corpus import CacheRebuiltWarning, split_of
from etude.music.events import STEPS_PER_SECOND, PerformanceEncoding
from etude.music.melody import MelodyEncoding, skyline
from etude.music.midi import READER_VERSION
from etude.music.performance import Performance, read_midi
from etude.runtime.cache import CacheMismatch, cache_dir, check_entry, load_arrays, save_arrays
from etude.runtime.files import open_atomic
from etude.validation import check_number

__all__ = [
    "MAX_IDS",
    "MAX_IDS_TEXT_BYTES",
    "MIDI_SUFFIXES",
    "SkippedFilesWarning",
    "TokenCache",
    "melody_of",
    "midi_files",
    "read_ids",
    "tokenize_midi_dir",
]

CACHE_VERSION = 1
MAX_IDS = 1 << 22
"""An ids file may hold at most this many ids (4,194,304: hours of dense piano at 10 ms steps)."""
MAX_IDS_TEXT_BYTES = 64 << 20
"""A text ids file (or stdin) may have at most this many bytes; larger ones are refused unread."""
MIDI_SUFFIXES = (".mid", ".midi")
"""File suffixes read from a folder (any case)."""
_STREAMS = {"performance": np.uint16, "step": np.int32, "melody": np.uint8}
_INDEX = ("names", "performance_offsets", "melody_offsets", "skipped_names", "skipped_reasons", "stream_sha256")
_CHUNK = 1 << 22  # elements hashed at a time when a stream is checked


class SkippedFilesWarning(EtudeWarning):
    """Files of a MIDI folder could not be read (or had no notes) and were left out; one warning for all."""


@dataclass(frozen=True, eq=False)
class TokenCache:
    """A tokenized MIDI folder: memory-mapped streams and the offsets of each file in them.

    File ``i``'s performance ids are ``performance[performance_offsets[i]:performance_offsets[i + 1]]``
    (their steps in ``step`` alike), its melody frames ``melody[melody_offsets[i]:melody_offsets[i + 1]]``.
    """

    entry: Path
    """The cache folder."""
    source: Path
    """The MIDI folder it was built from."""
    names: tuple[str, ...]
    """Relative paths (POSIX) of the files read, in path order."""
    performance: np.ndarray
    step: np.ndarray
    melody: np.ndarray
    performance_offsets: np.ndarray
    melody_offsets: np.ndarray
    skipped: tuple[tuple[str, str], ...]
    """(relative path, reason) of each file left out."""
    keys: int
    built: bool
    """True when this call read the MIDI files, False when it reused the cache."""

    def __len__(self) -> int:
        return len(self.names)

    @property
    def encoding(self) -> PerformanceEncoding:
        return PerformanceEncoding(self.keys)

    def split(self, held_out: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """(train, held-out) file indices: a file is held out when a hash of its relative path says so
        (``etude.music.corpus.split_of`` with fractions ``(1 - held_out, held_out, 0)``), so the split of
        a file does not depend on the other files."""
        held_out = check_number("held_out", held_out, 0, 1, high_open=True)
        held = np.array([split_of(name, (1 - held_out, held_out, 0.0)) != "train" for name in self.names], dtype=bool)
        return np.flatnonzero(~held), np.flatnonzero(held)

    def stats(self) -> dict[str, object]:
        """Files read and skipped, tokens, melody frames and hours (from the last step of each file)."""
        ends = self.performance_offsets[1:]
        last = self.step[ends[ends > self.performance_offsets[:-1]] - 1].astype(np.int64)
        return {
            "files": len(self),
            "skipped": len(self.skipped),
            "tokens": int(self.performance.size),
            "melody_frames": int(self.melody.size),
            "hours": round(float(last.sum()) / STEPS_PER_SECOND / 3600, 3),
            "cache": str(self.entry),
        }


def _ids_from_npy(path: Path) -> np.ndarray:
    """A .npy file of integer ids, its header checked against ``MAX_IDS`` before the data is read."""
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # reads the header; the data stays on disk
    except Exception as error:
        raise BadInputError(f"ids file {path} is not a readable .npy array ({type(error).__name__})") from error
    if not isinstance(mapped, np.ndarray):
        raise BadInputError(f"ids file {path} is not a .npy array (an .npz archive?)")
    if mapped.size > MAX_IDS:
        raise BadInputError(f"ids file {path} holds {mapped.size:,} ids, more than the {MAX_IDS:,} etude reads")
    return np.array(mapped)


def read_ids(source: str) -> np.ndarray:
    """Ids from a .npy file, a text file of integers (spaces, commas, newlines) or '-' (stdin).

    Refused up front in one line (``BadInputError``): more than ``MAX_IDS`` ids in a .npy header,
    text over ``MAX_IDS_TEXT_BYTES`` (before it is read), more than ``MAX_IDS`` words of text.
    """
    if source == "-":
        text = sys.stdin.read(MAX_IDS_TEXT_BYTES + 1)
        if len(text) > MAX_IDS_TEXT_BYTES:
            raise BadInputError(f"ids on stdin exceed {MAX_IDS_TEXT_BYTES >> 20} MiB of text, more than etude reads")
    else:
        path = Path(source)
        if path.is_dir():
            raise BadInputError(f"ids path {path} is a directory, expected a file of ids")
        if not path.is_file():
            raise BadInputError(f"ids file {path} does not exist")
        if path.suffix == ".npy":
            return _ids_from_npy(path)
        size = path.stat().st_size
        if size > MAX_IDS_TEXT_BYTES:
            raise BadInputError(
                f"ids file {path} is {size / 2**20:.1f} MiB of text, more than the "
                f"{MAX_IDS_TEXT_BYTES >> 20} MiB etude reads (a .npy array holds ids more compactly)"
            )
        try:
            text = path.read_text()
        except UnicodeDecodeError as error:
            raise BadInputError(f"ids file {path} is not text of integers (or a .npy array)") from error
    words = [w for w in re.split(r"[\s,]+", text.strip().strip("[]")) if w]
    if len(words) > MAX_IDS:
        raise BadInputError(f"ids: {len(words):,} items, more than the {MAX_IDS:,} etude reads")
    for i, word in enumerate(words):
        if not re.fullmatch(r"[+-]?\d+", word):
            raise BadInputError(f"ids: item {i} is {word[:20]!r}, expected an integer id")
        if len(word.lstrip("+-")) > 19 or not -(2**63) <= int(word) < 2**63:
            raise BadInputError(
                f"ids: item {i} is {word[:20]}{'...' if len(word) > 20 else ''}, beyond int64 (ids are small integers)"
            )
    return np.array([int(w) for w in words], dtype=np.int64)


def midi_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The ``.mid``/``.midi`` files under ``folder`` (recursive, hidden names skipped), by relative path.

    :raises BadInputError: when ``folder`` does not exist or is not a folder.
    """
    root = Path(folder)
    if not root.exists():
        raise BadInputError(f"MIDI folder {root} does not exist")
    if not root.is_dir():
        raise BadInputError(f"MIDI folder {root} is not a folder")
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(here) / f for f in files if not f.startswith(".") and f.lower().endswith(MIDI_SUFFIXES)]
    return sorted((f for f in found if f.is_file()), key=lambda f: f.relative_to(root).as_posix())


def _content_hash(root: Path, files: Sequence[Path], keys: int, melody: MelodyEncoding) -> str:
    digest = hashlib.sha256(
        f"etude-midi-tokens-v{CACHE_VERSION}|reader {READER_VERSION}|{PerformanceEncoding(keys)!r}|{melody!r}".encode()
    )
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as error:  # unreadable now: hashed as such, and left out when tokenized
            data = f"unreadable: {error.strerror}".encode()
        digest.update(f"|{file.relative_to(root).as_posix()}|{len(data)}|".encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def melody_of(performance: Performance, encoding: MelodyEncoding) -> Performance:
    """The melody of a MIDI performance: the ``skyline`` of its notes inside the encoding's pitch range."""
    keep = (performance.pitch >= encoding.min_pitch) & (performance.pitch <= encoding.max_pitch)
    return skyline(
        Performance.from_arrays(
            performance.pitch[keep], performance.velocity[keep], performance.start[keep], performance.end[keep]
        ),
        encoding.frames_per_second,
    )


def _encode_file(
    file: Path, encoding: PerformanceEncoding, melody: MelodyEncoding
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(performance ids, steps, melody ids) of one file; raises for a file that cannot be used."""
    performance = read_midi(file)
    if len(performance) == 0:
        raise BadInputError("no notes (drums are not read)")
    ids = encoding.encode(performance)
    shift = (ids >= encoding.shift_offset) & (ids < encoding.velocity_offset)
    steps = np.where(shift, ids - encoding.shift_offset + 1, 0)
    at = np.concatenate([[0], np.cumsum(steps)[:-1]])  # the step at which each token sounds
    return ids, at, melody.encode(melody_of(performance, melody))


def _reason(error: BaseException, file: Path) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[len(str(file)) :].lstrip(" :") if text.startswith(str(file)) else text


class _StreamWriter:
    """Appends arrays to a ``.npy`` file atomically: header for length 0, data, then the real header.

    NumPy pads a 1-D header to a fixed size whatever the length (room for the shape to grow), so
    rewriting it in place at the end is exact; the size is checked.
    """

    def __init__(self, handle: BinaryIO, dtype: type) -> None:
        self.handle, self.dtype, self.count, self.digest = handle, np.dtype(dtype), 0, hashlib.sha256()
        self.header = len(self._header(0))
        handle.write(self._header(0))

    def _header(self, n: int) -> bytes:
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buffer, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (n,)}
        )
        return buffer.getvalue()

    def append(self, values: np.ndarray) -> None:
        data = np.ascontiguousarray(values, dtype=self.dtype).tobytes()
        self.handle.write(data)
        self.digest.update(data)
        self.count += values.size

    def close(self) -> str:
        header = self._header(self.count)
        if len(header) != self.header:
            raise AssertionError("npy header size changed")
        self.handle.seek(0)
        self.handle.write(header)
        self.handle.seek(0, os.SEEK_END)
        return self.digest.hexdigest()


def _stream_sha256(array: np.ndarray) -> str:
    digest = hashlib.sha256()
    for i in range(0, array.size, _CHUNK):
        digest.update(np.ascontiguousarray(array[i : i + _CHUNK]).tobytes())
    return digest.hexdigest()


def _open(entry: Path, key: str, source: Path, built: bool, keys: int) -> TokenCache:
    index = load_arrays(entry / "index.npz", key, _INDEX)
    streams = {name: np.load(entry / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in _STREAMS}
    for (name, dtype), digest in zip(_STREAMS.items(), index["stream_sha256"].tolist()):
        array = streams[name]
        if array.dtype != np.dtype(dtype) or array.ndim != 1 or _stream_sha256(array) != digest:
            raise CacheMismatch(f"stream {name}.npy does not match its index")
    p, m = index["performance_offsets"], index["melody_offsets"]
    n = index["names"].size
    if (
        p.size != n + 1
        or m.size != n + 1
        or p[0] != 0
        or m[0] != 0
        or np.any(np.diff(p) < 1)
        or np.any(np.diff(m) < 0)
        or p[-1] != streams["performance"].size
        or p[-1] != streams["step"].size
        or m[-1] != streams["melody"].size
    ):
        raise CacheMismatch("inconsistent offsets")
    skipped = tuple(zip(index["skipped_names"].tolist(), index["skipped_reasons"].tolist()))
    return TokenCache(
        entry,
        source,
        tuple(index["names"].tolist()),
        streams["performance"],
        streams["step"],
        streams["melody"],
        p,
        m,
        skipped,
        keys,
        built,
    )


def _build(
    entry: Path,
    key: str,
    root: Path,
    files: Sequence[Path],
    keys: int,
    melody: MelodyEncoding,
    show_progress: bool | None,
) -> None:
    from etude.runtime import progress

    encoding = PerformanceEncoding(keys)
    names, skipped, p_offsets, m_offsets = [], [], [0], [0]
    paths = {name: entry / f"{name}.npy" for name in _STREAMS}
    for name in _STREAMS:
        check_entry(paths[name])
    disable = None if show_progress is None else not show_progress
    with (
        open_atomic(paths["performance"], what="token cache") as hp,
        open_atomic(paths["step"], what="token cache") as hs,
        open_atomic(paths["melody"], what="token cache") as hm,
    ):
        writers = [_StreamWriter(h, dtype) for h, dtype in zip((hp, hs, hm), _STREAMS.values())]
        for file in progress(files, desc=f"tokenizing {root.name or root}", disable=disable):
            relative = file.relative_to(root).as_posix()
            try:
                ids, at, frames = _encode_file(file, encoding, melody)
            except MissingDependencyError:
                raise
            except Exception as error:  # noqa: BLE001 -- symusic and the encoders raise many types: all skip
                skipped.append((relative, _reason(error, file)))
                continue
            for writer, values in zip(writers, (ids, at, frames)):
                writer.append(values)
            names.append(relative)
            p_offsets.append(p_offsets[-1] + ids.size)
            m_offsets.append(m_offsets[-1] + frames.size)
        if not names:
            first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
            raise BadInputError(
                f"no readable MIDI file in {root}: {len(files)} .mid/.midi files, none could be read{first}"
            )
        digests = [writer.close() for writer in writers]
    save_arrays(
        entry / "index.npz",
        key,
        {
            "names": np.array(names),
            "performance_offsets": np.array(p_offsets, dtype=np.int64),
            "melody_offsets": np.array(m_offsets, dtype=np.int64),
            "skipped_names": np.array([s for s, _ in skipped], dtype=str),
            "skipped_reasons": np.array([r for _, r in skipped], dtype=str),
            "stream_sha256": np.array(digests),
        },
    )


def tokenize_midi_dir(
    folder: str | os.PathLike[str],
    *,
    keys: int = 128,
    cache: str | os.PathLike[str] | None = None,
    show_progress: bool | None = None,
) -> TokenCache:
    """The token streams of every MIDI file under ``folder``, from the cache or tokenized (then cached).

    :param keys: 128 or 88 (``PerformanceEncoding``); with 88 a file with notes outside 21-108 is left out.
    :param cache: cache folder (default ``$ETUDE_CACHE`` or ``~/.cache/etude``).
    :param show_progress: progress bar while tokenizing (``None``: only on a terminal).
    :raises BadInputError: when ``folder`` is missing, holds no .mid/.midi file, or none could be read.
    :warns SkippedFilesWarning: once, when some files were left out (also when read from the cache).
    """
    encoding, melody = PerformanceEncoding(keys), MelodyEncoding()
    root = Path(folder)
    files = midi_files(root)
    if not files:
        raise BadInputError(f"MIDI folder {root} holds no .mid or .midi file")
    key = _content_hash(root, files, encoding.keys, melody)
    base = Path(cache) if cache is not None else cache_dir()
    entry = base / f"midi-{keys}keys-{len(files)}-{key[:16]}"
    check_entry(entry / "index.npz")
    tokens = None
    if (entry / "index.npz").exists():
        try:
            tokens = _open(entry, key, root, False, keys)
        except Exception as error:  # noqa: BLE001 -- any unreadable, truncated or mismatched entry is rebuilt
            warnings.warn(
                f"token cache {entry} is unusable ({type(error).__name__}: {error}); rebuilding it",
                CacheRebuiltWarning,
                stacklevel=2,
            )
    if tokens is None:
        _build(entry, key, root, files, keys, melody, show_progress)
        tokens = _open(entry, key, root, True, keys)
    if tokens.skipped:
        name, reason = tokens.skipped[0]
        warnings.warn(
            f"skipped {len(tokens.skipped)} of {len(files)} files that could not be read (first: {name}: {reason})",
            SkippedFilesWarning,
            stacklevel=2,
        )
    return tokens
