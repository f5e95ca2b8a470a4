"""The performance event encoding: note-on, note-off, 10 ms time-shift and velocity events.

Oore et al., "This Time with Feeling" (arXiv:1808.03715, Sec. 6.1), used by the Music
Transformer (arXiv:1809.04281, Sec. 4.2) and the Transformer autoencoder (Choi et al., ICML
2020, arXiv:1912.05537, Sec. 3.1). The rules are note_seq's (``performance_lib.py``):

- times are quantized to 100 steps per second, ``step = floor(100 t + 0.5)``; a note whose end
  falls on its start step is lengthened to one step;
- the notes, in the ``Performance``'s order (unquantized start, then pitch), give one onset and
  one offset each, ordered by (step, note index, offset after onset): within a step, onsets
  keep the order of their unquantized times. Two notes of one key whose onsets round to one
  step give two note-ons, as in note_seq. A ``TIME_SHIFT`` of 1-100 steps moves to the next
  step, and a gap of more than 1 s is split into full-second shifts (250 steps -> 100, 100, 50);
- velocity bin ``b = (v - 1) // 4 + 1`` (32 bins of 4, bin size ``ceil(127 / 32)``), emitted
  before a note-on only when the bin changes (the first note-on always has one); a bin decodes
  to ``1 + 4 (b - 1)``, and a note-on before any velocity event decodes to velocity 100.

Ids (tensor2tensor's layout, so the paper's vocabularies are ids ``0 .. 2 + num_events - 1``):
``PAD = 0``, ``EOS = 1``, then note-on (one per key), note-off, time-shift 1..100, velocity
1..32; ``BOS`` is one extra id after the events. 128 keys: 388 events, 390 with PAD/EOS as in
the papers, ``vocab_size`` 391 with BOS. 88 keys (MIDI 21-108): 308 events, 310 with PAD/EOS
(the papers' 310), ``vocab_size`` 311.
"""

from __future__ import annotations

from collections import deque
from typing import TypeVar

import numpy as np

from etude.errors import BadInputError
from etude.music.performance import Performance

__all__ = ["PerformanceEncoding", "as_ids", "bin_to_velocity", "velocity_to_bin"]

STEPS_PER_SECOND = 100
MAX_SHIFT_STEPS = 100
VELOCITY_BINS = 32
_BIN_SIZE = 4  # ceil(127 / 32), note_seq's _velocity_bin_size
DEFAULT_VELOCITY = 100  # note_seq's Performance.to_sequence default
_IntOrArray = TypeVar("_IntOrArray", int, np.ndarray)  # a velocity (bin) or an array of them


def velocity_to_bin(velocity: _IntOrArray) -> _IntOrArray:
    """Velocity bin of a MIDI velocity in 1..127: ``(v - 1) // 4 + 1``, in 1..32."""
    return (velocity - 1) // _BIN_SIZE + 1


def bin_to_velocity(velocity_bin: _IntOrArray) -> _IntOrArray:
    """The velocity a bin decodes to: ``1 + 4 (b - 1)`` (bin 1 -> 1, bin 32 -> 125)."""
    return 1 + _BIN_SIZE * (velocity_bin - 1)


def to_steps(seconds: np.ndarray) -> np.ndarray:
    """note_seq's absolute quantization: ``floor(100 t + 0.5)`` as int64."""
    return np.floor(np.asarray(seconds, dtype=np.float64) * STEPS_PER_SECOND + 0.5).astype(np.int64)


def as_ids(ids: object, vocab_size: int, what: str = "ids") -> np.ndarray:
    """``ids`` (list, array or tensor of ints) as a 1-D int64 array, each in ``[0, vocab_size)``."""
    if hasattr(ids, "detach"):  # a torch tensor
        ids = ids.detach().cpu().numpy()
    array = np.asarray(ids)
    if array.ndim != 1:
        raise BadInputError(f"{what} must be a 1-D sequence of ints, got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise BadInputError(f"{what} must be integers, got dtype {array.dtype}")
    bad = (array < 0) | (array >= vocab_size)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise BadInputError(f"{what}[{i}] = {int(array[i])} is outside the vocabulary [0, {vocab_size})")
    return array.astype(np.int64)


class PerformanceEncoding:
    """Performance events <-> token ids (see the module docstring for the rules and ids).

    :param keys: 128 (MIDI 0-127, 388 events) or 88 (piano keys, MIDI 21-108, 308 events).
    """

    PAD = 0
    EOS = 1
    RESERVED = 2  # PAD and EOS come before the events, as in tensor2tensor

    def __init__(self, keys: int = 128) -> None:
        if keys not in (88, 128):
            raise BadInputError(f"keys must be 128 (all MIDI pitches) or 88 (piano), got {keys!r}")
        self.keys = keys
        self.min_pitch = 0 if keys == 128 else 21
        self.max_pitch = self.min_pitch + keys - 1
        self.note_on_offset = self.RESERVED
        self.note_off_offset = self.note_on_offset + keys
        self.shift_offset = self.note_off_offset + keys
        self.velocity_offset = self.shift_offset + MAX_SHIFT_STEPS
        self.num_events = 2 * keys + MAX_SHIFT_STEPS + VELOCITY_BINS
        self.BOS = self.RESERVED + self.num_events
        self.vocab_size = self.BOS + 1

    def __repr__(self) -> str:
        return f"PerformanceEncoding(keys={self.keys})"

    def note_on(self, pitch: int) -> int:
        """Id of NOTE_ON(pitch)."""
        return self.note_on_offset + self._key(pitch)

    def note_off(self, pitch: int) -> int:
        """Id of NOTE_OFF(pitch)."""
        return self.note_off_offset + self._key(pitch)

    def time_shift(self, steps: int) -> int:
        """Id of TIME_SHIFT(steps), 1 <= steps <= 100 (10 ms each)."""
        if not 1 <= steps <= MAX_SHIFT_STEPS:
            raise BadInputError(f"time shift must be 1..{MAX_SHIFT_STEPS} steps, got {steps!r}")
        return self.shift_offset + steps - 1

    def velocity(self, velocity_bin: int) -> int:
        """Id of VELOCITY(bin), 1 <= bin <= 32."""
        if not 1 <= velocity_bin <= VELOCITY_BINS:
            raise BadInputError(f"velocity bin must be 1..{VELOCITY_BINS}, got {velocity_bin!r}")
        return self.velocity_offset + velocity_bin - 1

    def describe(self, token: int) -> str:
        """A readable name of one id: 'PAD', 'note_on 60', 'shift 10', 'velocity 25', ..."""
        t = int(as_ids([token], self.vocab_size, "token")[0])
        if t < self.RESERVED or t == self.BOS:
            return {self.PAD: "PAD", self.EOS: "EOS", self.BOS: "BOS"}[t]
        for name, offset, base in (
            ("velocity", self.velocity_offset, 1),
            ("shift", self.shift_offset, 1),
            ("note_off", self.note_off_offset, self.min_pitch),
            ("note_on", self.note_on_offset, self.min_pitch),
        ):
            if t >= offset:
                return f"{name} {t - offset + base}"
        raise AssertionError(t)

    def _key(self, pitch: int) -> int:
        if not self.min_pitch <= pitch <= self.max_pitch:
            raise BadInputError(f"pitch must be in {self.min_pitch}..{self.max_pitch} for {self!r}, got {pitch!r}")
        return int(pitch) - self.min_pitch

    def _steps(self, performance: Performance) -> tuple[np.ndarray, ...]:
        """(pitch, velocity, start step, end step) in the performance's (start, pitch) order."""
        if not isinstance(performance, Performance):
            raise BadInputError(f"performance must be a Performance, got {type(performance).__name__}")
        if len(performance):
            low, high = int(performance.pitch.min()), int(performance.pitch.max())
            if low < self.min_pitch or high > self.max_pitch:
                raise BadInputError(
                    f"performance pitches {low}..{high} do not fit {self!r} ({self.min_pitch}..{self.max_pitch});"
                    " transpose it or use PerformanceEncoding(keys=128)"
                )
        start, end = to_steps(performance.start), to_steps(performance.end)
        return performance.pitch, performance.velocity, start, np.maximum(end, start + 1)

    def quantize(self, performance: Performance) -> Performance:
        """The performance that ``encode`` writes: times on the 10 ms grid, velocities binned.

        ``decode(encode(p)) == quantize(p)`` exactly. Two notes of one key whose onsets round to
        one step become one note (the later end, the louder velocity), as in ``decode``.
        """
        pitch, velocity, start, end = self._steps(performance)
        return Performance.from_arrays(
            pitch, bin_to_velocity(velocity_to_bin(velocity)), start / STEPS_PER_SECOND, end / STEPS_PER_SECOND
        )

    def encode(self, performance: Performance, *, bos: bool = False, eos: bool = False) -> np.ndarray:
        """Token ids of a performance, shape ``[tokens]`` (int64), with optional BOS/EOS."""
        pitch, velocity, start, end = self._steps(performance)
        n = pitch.size
        steps = np.concatenate([start, end])
        index = np.concatenate([np.arange(n), np.arange(n)])
        is_off = np.repeat([False, True], n)
        order = np.lexsort((is_off, index, steps))  # note_seq: sorted((step, idx, is_offset))
        bins = velocity_to_bin(velocity).tolist()
        on_ids = (pitch - self.min_pitch + self.note_on_offset).tolist()
        off_ids = (pitch - self.min_pitch + self.note_off_offset).tolist()
        out = [self.BOS] if bos else []
        current_step, current_bin = 0, 0
        shift0, velocity0 = self.shift_offset - 1, self.velocity_offset - 1
        for step, i, off in zip(steps[order].tolist(), index[order].tolist(), is_off[order].tolist()):
            if step > current_step:
                gap = step - current_step
                out.extend([shift0 + MAX_SHIFT_STEPS] * ((gap - 1) // MAX_SHIFT_STEPS))
                out.append(shift0 + (gap - 1) % MAX_SHIFT_STEPS + 1)
                current_step = step
            if off:
                out.append(off_ids[i])
            else:
                if bins[i] != current_bin:
                    current_bin = bins[i]
                    out.append(velocity0 + current_bin)
                out.append(on_ids[i])
        if eos:
            out.append(self.EOS)
        return np.asarray(out, dtype=np.int64)

    def decode(self, ids: object) -> Performance:
        """The performance of any id sequence; never fails on ids inside the vocabulary.

        PAD and BOS are skipped and EOS ends the sequence. As note_seq's ``Performance.to_sequence``:
        a note-off ends its key's earliest sounding note and is ignored when none sounds, notes
        still sounding at the end end at the last step, and zero-length notes are dropped. The
        notes then form a ``Performance``: a re-struck key ends its sounding note, and notes of
        one key struck at one step become one.

        :param ids: 1-D ints in ``[0, vocab_size)`` (list, NumPy array or torch tensor).
        :raises BadInputError: for an id outside the vocabulary or a non-1-D input.
        """
        tokens = as_ids(ids, self.vocab_size).tolist()
        step, velocity = 0, DEFAULT_VELOCITY
        sounding: dict[int, deque[tuple[int, int]]] = {}  # pitch -> (start step, velocity), earliest first
        notes: list[tuple[int, int, int, int]] = []
        on, off, shift, vel = self.note_on_offset, self.note_off_offset, self.shift_offset, self.velocity_offset
        for t in tokens:
            if t == self.EOS:
                break
            if t < self.RESERVED or t == self.BOS:
                continue
            if t < off:
                sounding.setdefault(t - on + self.min_pitch, deque()).append((step, velocity))
            elif t < shift:
                held = sounding.get(t - off + self.min_pitch)
                if held:
                    begin, v = held.popleft()  # O(1): a million open notes of one key stay linear
                    if step > begin:
                        notes.append((t - off + self.min_pitch, v, begin, step))
            elif t < vel:
                step += t - shift + 1
            else:
                velocity = int(bin_to_velocity(t - vel + 1))
        notes.extend((p, v, s, step) for p, held in sounding.items() for s, v in held if step > s)
        if not notes:
            return Performance()
        pitches, velocities, starts, ends = (np.asarray(column, dtype=np.int64) for column in zip(*notes))
        return Performance.from_arrays(pitches, velocities, starts / STEPS_PER_SECOND, ends / STEPS_PER_SECOND)
