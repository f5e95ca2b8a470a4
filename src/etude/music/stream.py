"""Training crops sliced on demand out of a token cache, so a large MIDI folder never sits in memory.

For the Transformer autoencoder (Choi et al., ICML 2020, arXiv:1912.05537, Sec. 4), whose
MAESTRO examples are random crops of each performance's event sequence (as in the Music
Transformer, Huang et al. 2018, arXiv:1809.04281, Sec. 4.2). ``StreamCrops`` has the interface
``etude.music.training.fit`` and ``nll`` use (``len``, ``select(index) -> Crops``, ``to(device)``)
and reads ``etude.music.tokens.TokenCache``'s memory-mapped streams only for the crops asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from etude.errors import BadInputError
from etude.music.crops import Crops
from etude.music.events import STEPS_PER_SECOND
from etude.music.melody import MelodyEncoding
from etude.music.tokens import TokenCache
from etude.validation import check_int

__all__ = ["StreamCrops"]

_ROUNDS = 64  # rejection rounds before a start that is still not a boundary moves back to one


class StreamCrops:
    """``count`` token windows of some files of a ``TokenCache``, drawn once from ``seed``.

    Crops are cut in token space: a window is ``max_tokens - 1`` consecutive performance ids
    (room for the decoder's BOS; fewer at a file's end, then PAD), so every crop fills the model's
    context whatever the density of the music (a window of fixed seconds is cut short where the
    music is dense and half empty where it is sparse) and is a slice of the cache, not a
    re-encoding; as in any crop, notes may begin before it or end after it. A window starts
    at a time shift, at a velocity or at a note-on not preceded by its velocity: never at a
    note-off (whose note would lie before the window) nor between a velocity and its note-on
    (which would lose the note's dynamics). Starts are drawn uniformly among those positions of
    the chosen files that leave room for a whole window (a file shorter than a window: its first
    token), by rejection sampling, so every allowed start is equally likely and a file is drawn in
    proportion to its length. The melody of a crop is the file's melody frames whose time, on the
    melody's grid (``floor(fps t + 0.5)``), falls in the window's span ``[t0, t1)`` (to the file's
    end for a window that reaches it), cut to ``max_tokens`` frames; no frame gives ``[NO_EVENT]``.

    With ``transpose``, each crop is transposed by a shift drawn from ``-transpose..transpose``
    (the pitch augmentation of Huang et al. 2018, Sec. 4.2, in token space: note-on, note-off and
    melody pitch ids move together; the time-stretch half would need re-encoding), moved towards 0
    as far as needed to keep every pitch on the piano (21-108); a crop already outside it stays.

    Windows and shifts are fixed at construction (17 bytes per crop), so ``select`` depends only
    on the index: ``fit``'s sampler and its resume see the same data, and memory grows with
    ``count``, not with the folder.

    :param tokens: the cache (``etude.music.tokens.tokenize_midi_dir``).
    :param files: indices of the files to crop (e.g. one side of ``tokens.split()``).
    :param max_tokens: the model's ``max_len``; performance rows have ``max_tokens - 1`` ids.
    :param count: how many crops (``len``).
    :param seed: selects the windows (and the shifts).
    :param transpose: largest transposition in semitones (0: none).
    """

    def __init__(
        self,
        tokens: TokenCache,
        files: Sequence[int] | np.ndarray,
        *,
        max_tokens: int,
        count: int,
        seed: int,
        transpose: int = 0,
    ) -> None:
        files = np.asarray(files, dtype=np.int64).reshape(-1)
        if files.size == 0:
            raise BadInputError("StreamCrops needs at least one file")
        if files.min() < 0 or files.max() >= len(tokens):
            raise BadInputError(f"files must be indices in [0, {len(tokens)}), got {files.min()}..{files.max()}")
        max_tokens = check_int("max_tokens", max_tokens, 2)
        count = check_int("count", count, 1)
        seed = check_int("seed", seed, 0)
        transpose = check_int("transpose", transpose, 0, 12)
        self.tokens, self.max_tokens, self.length = tokens, max_tokens, max_tokens - 1
        self.device = torch.device("cpu")
        self.melody_encoding = MelodyEncoding()  # the cache's (etude.music.tokens): 10 fps, pitches 21-108
        rng = np.random.default_rng(seed)
        self.file, self.start = self._draw(files, count, rng)
        self.shift = rng.integers(-transpose, transpose + 1, size=count).astype(np.int8)

    def __len__(self) -> int:
        return self.start.size

    def __repr__(self) -> str:
        return f"StreamCrops({len(self)} crops of {np.unique(self.file).size} files, max_tokens={self.max_tokens})"

    def to(self, device: torch.device | str) -> StreamCrops:
        """The same crops, whose ``select`` returns tensors on ``device``."""
        if torch.device(device) == self.device:
            return self
        moved = object.__new__(type(self))
        moved.__dict__.update(self.__dict__, device=torch.device(device))
        return moved

    def _boundary(self, position: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Whether each global position may start a window (``first``: its file's first position)."""
        enc, ids = self.tokens.encoding, self.tokens.performance
        token = ids[position].astype(np.int64)
        before = ids[np.maximum(position - 1, 0)].astype(np.int64)
        after_velocity = (position > first) & (before >= enc.velocity_offset)
        note_on = (token >= enc.note_on_offset) & (token < enc.note_off_offset)
        return (token >= enc.shift_offset) | (note_on & ~after_velocity)

    def _draw(self, files: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        offsets = self.tokens.performance_offsets
        first, end = offsets[files], offsets[files + 1]
        room = np.maximum(end - first - self.length, 0) + 1  # starts per file that leave a whole window
        cumulative = np.cumsum(room)
        file, start = np.empty(count, dtype=np.int64), np.empty(count, dtype=np.int64)
        todo = np.arange(count)
        for _ in range(_ROUNDS):
            u = rng.integers(0, cumulative[-1], size=todo.size)
            k = np.searchsorted(cumulative, u, side="right")
            position = first[k] + u - (cumulative[k] - room[k])
            ok = self._boundary(position, first[k])
            file[todo[ok]], start[todo[ok]] = files[k[ok]], position[ok]
            todo, k, position = todo[~ok], k[~ok], position[~ok]
            if todo.size == 0:
                break
        for i, f, p in zip(todo.tolist(), files[k].tolist(), position.tolist()):  # rare: back to a boundary
            begin = int(offsets[f])
            while p > begin and not self._boundary(np.array([p]), np.array([begin]))[0]:
                p -= 1
            file[i], start[i] = f, p
        return file, start

    def window(self, i: int) -> tuple[int, int, int]:
        """Crop ``i``'s (file, first, end) positions in the file's performance ids (end exclusive)."""
        f, s = int(self.file[i]), int(self.start[i])
        begin, end = (int(x) for x in self.tokens.performance_offsets[f : f + 2])
        return f, s - begin, min(s + self.length, end) - begin

    def _transpose(self, ids: np.ndarray, line: np.ndarray, shift: int) -> None:
        """Move the pitches of ``ids`` (performance) and ``line`` (melody) by ``shift`` or less, in place."""
        enc, menc = self.tokens.encoding, self.melody_encoding
        note = (ids >= enc.note_on_offset) & (ids < enc.shift_offset)
        on = ids < enc.note_off_offset
        pitch = np.where(on, ids - enc.note_on_offset, ids - enc.note_off_offset)[note] + enc.min_pitch
        melodic = (line >= menc.RESERVED) & (line < menc.BOS)
        pitch = np.concatenate([pitch, line[melodic] - menc.RESERVED + menc.min_pitch])
        if pitch.size == 0:
            return
        # the shifts that keep every pitch on the piano, the melody encoding's range (21-108)
        low, high = menc.min_pitch - int(pitch.min()), menc.max_pitch - int(pitch.max())
        if low <= 0 <= high:
            shift = min(max(shift, low), high)
            ids[note] += shift
            line[melodic] += shift

    def _frame(self, step: int) -> int:
        return int(np.floor(step * self.melody_encoding.frames_per_second / STEPS_PER_SECOND + 0.5))

    def select(self, index: Tensor | Sequence[int] | np.ndarray) -> Crops:
        """The crops ``index`` as padded ``Crops``: performance ``[B, max_tokens - 1]``, melody ``[B, max_tokens]``."""
        rows = torch.as_tensor(index).reshape(-1).tolist()
        t = self.tokens
        performance = np.zeros((len(rows), self.length), dtype=np.int64)
        melody = np.zeros((len(rows), self.max_tokens), dtype=np.int64)
        for row, i in enumerate(rows):
            f, s, e = self.window(i)
            p0, m0, m1 = int(t.performance_offsets[f]), int(t.melody_offsets[f]), int(t.melody_offsets[f + 1])
            ids = t.performance[p0 + s : p0 + e].astype(np.int64)
            frames = m1 - m0
            g0 = min(self._frame(int(t.step[p0 + s])), frames)
            g1 = frames if p0 + e == t.performance_offsets[f + 1] else min(self._frame(int(t.step[p0 + e])), frames)
            line = t.melody[m0 + g0 : m0 + max(g1, g0)][: self.max_tokens].astype(np.int64)
            if self.shift[i]:
                self._transpose(ids, line, int(self.shift[i]))
            performance[row, : ids.size] = ids
            if line.size:
                melody[row, : line.size] = line
            else:
                melody[row, 0] = MelodyEncoding.NO_EVENT
        return Crops(torch.from_numpy(performance).to(self.device), torch.from_numpy(melody).to(self.device))
