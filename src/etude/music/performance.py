"""Piano performances: notes with pitch, velocity, onset and offset in seconds.

The data type of the performance models of Oore et al., "This Time with Feeling: Learning
Expressive Musical Performance" (arXiv:1808.03715, Sec. 3) and Choi et al., "Encoding Musical
Style with Transformer Autoencoders" (ICML 2020, arXiv:1912.05537, Sec. 3.1).

A ``Performance`` is what a piano can play: a key sounds at most once at a time. The
constructor resolves overlapping notes of one pitch as a piano does (and as note_seq does when
it applies the sustain pedal): re-striking a sounding key ends its note at the new onset; two
notes of one key struck together become one note (the longer end, the louder velocity).
Notes are kept sorted by ``(start, pitch)``, which is then a unique key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np

from etude.errors import BadInputError
from etude.music.midi import read_notes, write_notes
from etude.validation import check_int, check_number

__all__ = ["Note", "Performance", "read_midi", "write_midi"]


class Note(NamedTuple):
    """One note: MIDI pitch (0-127), velocity (1-127), start and end in seconds (end > start)."""

    pitch: int
    velocity: int
    start: float
    end: float


def _check(pitch: np.ndarray, velocity: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
    """Raise ``BadInputError`` naming the first invalid note and what was expected."""
    checks = [
        ("pitch", pitch, (pitch < 0) | (pitch > 127), "an int in [0, 127]"),
        ("velocity", velocity, (velocity < 1) | (velocity > 127), "an int in [1, 127]"),
        ("start", start, ~np.isfinite(start) | (start < 0), "a finite time >= 0 s"),
        ("end", end, ~np.isfinite(end) | ~(end > start), "a finite time > start"),
    ]
    for name, values, bad, expected in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            got = values[i].item()
            extra = f" (start {start[i].item()!r})" if name == "end" else ""
            raise BadInputError(f"Performance note {i}: {name} must be {expected}, got {got!r}{extra}")


def _as_array(values: object, name: str, dtype: type) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise BadInputError(f"Performance {name} must be a 1-D array, got shape {array.shape}")
    if dtype is np.int64:
        if array.size and not np.issubdtype(array.dtype, np.integer):
            if not (np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array))):
                raise BadInputError(f"Performance {name} must hold integers, got dtype {array.dtype}")
        return array.astype(np.int64)
    if array.size and not np.issubdtype(array.dtype, np.number):
        raise BadInputError(f"Performance {name} must hold numbers, got dtype {array.dtype}")
    return array.astype(np.float64)


def _one_note_per_key(p: np.ndarray, v: np.ndarray, s: np.ndarray, e: np.ndarray):
    """Piano semantics: merge same-key notes struck together, cut a note when its key is re-struck."""
    order = np.lexsort((-e, s, p))  # by pitch, then start, the longest first among equal starts
    p, v, s, e = p[order], v[order], s[order], e[order]
    same_key = p[1:] == p[:-1]
    duplicate = np.r_[False, same_key & (s[1:] == s[:-1])]
    if duplicate.any():
        group = np.cumsum(~duplicate) - 1
        loudest = np.zeros(int(group[-1]) + 1, dtype=np.int64)
        np.maximum.at(loudest, group, v)
        keep = ~duplicate
        p, s, e, v = p[keep], s[keep], e[keep], loudest
        same_key = p[1:] == p[:-1]
    next_start = np.r_[s[1:], np.inf]
    restruck = np.r_[same_key, False] & (next_start < e)
    e = np.where(restruck, next_start, e)
    order = np.lexsort((p, s))
    return p[order], v[order], s[order], e[order]


class Performance:
    """A piano performance: notes sorted by ``(start, pitch)``, one sounding note per key.

    Build it from notes (``Note`` or ``(pitch, velocity, start, end)`` tuples), from arrays
    (``Performance.from_arrays``) or from a MIDI file (``Performance.from_midi``, which applies
    the sustain pedal). The arrays ``pitch``, ``velocity`` (int64) and ``start``, ``end``
    (float64 seconds), each of shape ``[notes]``, are read-only.

    :raises BadInputError: naming the first note whose pitch, velocity or times are invalid.
    """

    __slots__ = ("pitch", "velocity", "start", "end")
    pitch: np.ndarray
    velocity: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __init__(self, notes: Iterable[Note | tuple[int, int, float, float]] = ()) -> None:
        rows = [tuple(note) for note in notes]
        if any(len(row) != 4 for row in rows):
            bad = next(i for i, row in enumerate(rows) if len(row) != 4)
            raise BadInputError(f"Performance note {bad}: expected (pitch, velocity, start, end), got {rows[bad]!r}")
        columns = list(zip(*rows)) if rows else [(), (), (), ()]
        self._set(*columns)

    def _set(self, pitch: object, velocity: object, start: object, end: object) -> None:
        p = _as_array(pitch, "pitch", np.int64)
        v = _as_array(velocity, "velocity", np.int64)
        s = _as_array(start, "start", np.float64)
        e = _as_array(end, "end", np.float64)
        if not p.shape == v.shape == s.shape == e.shape:
            raise BadInputError(
                "Performance arrays must have one length, got pitch, velocity, start, end of lengths "
                f"{p.size}, {v.size}, {s.size}, {e.size}"
            )
        _check(p, v, s, e)
        for name, array in zip(self.__slots__, _one_note_per_key(p, v, s, e)):
            array.flags.writeable = False
            setattr(self, name, array)

    @classmethod
    def from_arrays(cls, pitch: object, velocity: object, start: object, end: object) -> Performance:
        """A performance from four equal-length 1-D arrays (pitches, velocities, seconds, seconds)."""
        performance = cls.__new__(cls)
        performance._set(pitch, velocity, start, end)
        return performance

    @classmethod
    def from_midi(cls, path: str | os.PathLike[str]) -> Performance:
        """Read a MIDI file (every non-drum channel, sustain pedal applied); rules: ``etude.music.midi``.

        :raises BadInputError: when ``path`` is missing, too large or not a readable MIDI file.
        """
        performance = cls.__new__(cls)
        for name, array in zip(cls.__slots__, read_notes(path)):  # valid and resolved already (tested)
            array.flags.writeable = False
            setattr(performance, name, array)
        return performance

    def to_midi(self, path: str | os.PathLike[str]) -> None:
        """Write this performance as a one-track piano MIDI file (1 ms ticks), atomically."""
        write_notes(path, self.pitch, self.velocity, self.start, self.end)

    @property
    def notes(self) -> list[Note]:
        """The notes as ``Note`` tuples of Python numbers, in ``(start, pitch)`` order."""
        return [
            Note(*row)
            for row in zip(self.pitch.tolist(), self.velocity.tolist(), self.start.tolist(), self.end.tolist())
        ]

    @property
    def duration(self) -> float:
        """Seconds from time 0 to the last offset (0 for an empty performance)."""
        return float(self.end.max()) if len(self) else 0.0

    def transpose(self, semitones: int) -> Performance:
        """Every pitch moved by ``semitones``; every note must stay in [0, 127]."""
        check_int("semitones", semitones)
        pitch = self.pitch + int(semitones)
        if len(self) and (pitch.min() < 0 or pitch.max() > 127):
            raise BadInputError(
                f"transpose by {semitones} moves pitches {int(self.pitch.min())}..{int(self.pitch.max())} "
                "outside [0, 127]; pick a smaller shift"
            )
        return Performance.from_arrays(pitch, self.velocity, self.start, self.end)

    def stretch(self, factor: float) -> Performance:
        """Every time multiplied by ``factor`` (> 0): 1.05 plays 5 % slower."""
        check_number("stretch factor", factor, 0, low_open=True)
        return Performance.from_arrays(self.pitch, self.velocity, self.start * factor, self.end * factor)

    def __len__(self) -> int:
        return int(self.pitch.size)

    def __iter__(self) -> Iterator[Note]:
        return iter(self.notes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Performance):
            return NotImplemented
        return all(np.array_equal(getattr(self, k), getattr(other, k)) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Performance({len(self)} notes, {self.duration:.2f} s)"


def read_midi(path: str | os.PathLike[str]) -> Performance:
    """``Performance.from_midi(path)``: a MIDI file's notes, rules in ``etude.music.midi``."""
    return Performance.from_midi(path)


def write_midi(performance: Performance, path: str | os.PathLike[str]) -> None:
    """``performance.to_midi(path)``: a one-track piano MIDI file (1 ms ticks), written atomically.

    :raises BadInputError: when ``performance`` is not a ``Performance`` or ``path`` cannot be written.
    """
    if not isinstance(performance, Performance):
        raise BadInputError(f"performance must be a Performance, got {type(performance).__name__}")
    performance.to_midi(path)
