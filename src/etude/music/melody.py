"""Melodies: a skyline extractor and the frame-wise melody encoding of the Transformer autoencoder.

Choi et al., "Encoding Musical Style with Transformer Autoencoders" (ICML 2020,
arXiv:1912.05537, Sec. 3.3): the melody is a monophonic line on a fixed frame grid with one
token per frame, a pitch (a note starts), note-off (the melody rests) or no-event (hold), as
in note_seq's ``MelodyOneHotEncoding``. For a score the melody is the top voice (see
``etude.music.corpus``); for MIDI input it is the highest-pitch skyline.

Ids: ``PAD = 0``, ``EOS = 1``, ``NO_EVENT = 2``, ``NOTE_OFF = 3``, pitch ``p`` ->
``4 + p - min_pitch``, then ``BOS``. With the default 88 keys that is 92 ids plus BOS (93).
"""

from __future__ import annotations

import numpy as np

from etude.errors import BadInputError
from etude.music.events import as_ids
from etude.music.performance import Performance
from etude.validation import check_int, check_number

__all__ = ["MelodyEncoding", "skyline"]


def _frame_bounds(performance: Performance, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Each note's (start, end) frame, ``floor(fps t + 0.5)``, with ``end > start``."""
    start = np.floor(performance.start * fps + 0.5).astype(np.int64)
    return start, np.maximum(np.floor(performance.end * fps + 0.5).astype(np.int64), start + 1)


def skyline(performance: Performance, frames_per_second: float = 10.0) -> Performance:
    """The highest-pitch line of a performance on a ``frames_per_second`` grid (monophonic).

    Uitdenbogerd and Zobel's skyline, per onset frame in time order: the highest note starting
    in the frame joins the melody unless a higher melody note is still sounding (a lower voice
    moving under a held melody note); joining ends the sounding melody note. Notes keep their
    velocity; times are whole frames.
    """
    if not isinstance(performance, Performance):
        raise BadInputError(f"performance must be a Performance, got {type(performance).__name__}")
    check_number("frames_per_second", frames_per_second, 0, low_open=True)
    start, end = _frame_bounds(performance, frames_per_second)
    pitch, velocity = performance.pitch.tolist(), performance.velocity.tolist()
    melody: list[list[int]] = []  # [pitch, velocity, start frame, end frame]
    previous = -1
    for i in np.lexsort((-performance.pitch, start)).tolist():  # by onset frame, highest first
        frame = int(start[i])
        if frame == previous:
            continue  # only the highest note of a frame can join
        previous = frame
        if melody and melody[-1][3] > frame:
            if pitch[i] < melody[-1][0]:
                continue  # a lower voice under a sounding melody note
            melody[-1][3] = frame
        melody.append([pitch[i], velocity[i], frame, int(end[i])])
    if not melody:
        return Performance()
    p, v, s, e = (np.array(column) for column in zip(*melody))
    return Performance.from_arrays(p, v, s / frames_per_second, e / frames_per_second)


class MelodyEncoding:
    """A melody as one token per frame: pitch onset, NOTE_OFF or NO_EVENT (see the module docstring).

    :param frames_per_second: frame rate (default 10: 100 ms frames).
    :param min_pitch: lowest encodable pitch (default 21, the piano's A0).
    :param max_pitch: highest encodable pitch (default 108, the piano's C8).
    """

    PAD = 0
    EOS = 1
    NO_EVENT = 2
    NOTE_OFF = 3
    RESERVED = 4

    def __init__(self, frames_per_second: float = 10.0, min_pitch: int = 21, max_pitch: int = 108) -> None:
        check_number("frames_per_second", frames_per_second, 0, low_open=True)
        if not (isinstance(min_pitch, int) and isinstance(max_pitch, int) and 0 <= min_pitch <= max_pitch <= 127):
            raise BadInputError(
                f"min_pitch and max_pitch must be ints with 0 <= min_pitch <= max_pitch <= 127, "
                f"got {min_pitch!r} and {max_pitch!r}"
            )
        self.frames_per_second = float(frames_per_second)
        self.min_pitch, self.max_pitch = min_pitch, max_pitch
        self.BOS = self.RESERVED + max_pitch - min_pitch + 1
        self.vocab_size = self.BOS + 1

    def __repr__(self) -> str:
        return (
            f"MelodyEncoding(frames_per_second={self.frames_per_second:g}, "
            f"min_pitch={self.min_pitch}, max_pitch={self.max_pitch})"
        )

    def encode(self, melody: Performance, *, bos: bool = False, eos: bool = False) -> np.ndarray:
        """Frame tokens of ``melody``, shape ``[frames + 1]`` (int64).

        Frame ``f`` covers ``[f, f + 1) / frames_per_second``; the last frame is the NOTE_OFF
        after the last note. A polyphonic input is reduced to its ``skyline`` first.

        :raises BadInputError: when a melody pitch is outside ``min_pitch..max_pitch``.
        """
        if not isinstance(melody, Performance):
            raise BadInputError(f"melody must be a Performance, got {type(melody).__name__}")
        line = skyline(melody, self.frames_per_second)
        start, end = _frame_bounds(line, self.frames_per_second)
        ids = np.full(int(end.max()) + 1 if len(line) else 0, self.NO_EVENT, dtype=np.int64)
        if len(line):
            if line.pitch.min() < self.min_pitch or line.pitch.max() > self.max_pitch:
                raise BadInputError(
                    f"melody pitches {int(line.pitch.min())}..{int(line.pitch.max())} do not fit {self!r}; "
                    "transpose the melody or widen min_pitch/max_pitch"
                )
            ids[end] = self.NOTE_OFF  # rests after notes; overwritten where the next note starts
            ids[start] = line.pitch - self.min_pitch + self.RESERVED
        parts = ([[self.BOS]] if bos else []) + [ids] + ([[self.EOS]] if eos else [])
        return np.concatenate(parts).astype(np.int64)

    def decode(self, ids: object, velocity: int = 100) -> Performance:
        """The monophonic performance of any id sequence (never fails on in-vocabulary ids).

        A pitch starts a note (ending the previous one), NOTE_OFF ends it, NO_EVENT holds;
        PAD and BOS take no frame; EOS ends the sequence; a note still on ends after the last
        frame.

        :raises BadInputError: for an id outside ``[0, vocab_size)`` or a bad ``velocity``.
        """
        check_int("velocity", velocity, 1, 127)
        tokens = as_ids(ids, self.vocab_size)
        cut = np.flatnonzero(tokens == self.EOS)
        tokens = tokens[: cut[0]] if cut.size else tokens
        tokens = tokens[(tokens != self.PAD) & (tokens != self.BOS)]
        events = np.flatnonzero((tokens == self.NOTE_OFF) | (tokens >= self.RESERVED))
        onsets = events[tokens[events] >= self.RESERVED]
        if onsets.size == 0:
            return Performance()
        boundaries = np.r_[events, tokens.size]
        ends = boundaries[np.searchsorted(boundaries, onsets, side="right")]
        pitch = tokens[onsets] - self.RESERVED + self.min_pitch
        fps = self.frames_per_second
        return Performance.from_arrays(pitch, np.full(onsets.size, velocity), onsets / fps, ends / fps)
