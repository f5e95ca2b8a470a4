"""Training examples of the Transformer autoencoder: time-window crops of a piece (Choi et al., arXiv:1912.05537, Sec. 4).

A crop is the performance tokens of a window (the decoder's target *and*, for the autoencoder, the
encoder's input: "input = target crop") and the melody of the same window. ``Crops`` holds them padded;
``etude.music.stream.StreamCrops`` slices them out of a token cache on demand, with the same interface
(``len``, ``select(index) -> Crops``, ``to(device)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from etude.errors import BadInputError
from etude.music.events import PerformanceEncoding
from etude.music.melody import MelodyEncoding
from etude.music.performance import Performance
from etude.music.styles import augment as augment_performances

__all__ = ["Crops", "crop", "make_crops"]


def crop(performance: Performance, start: float, seconds: float) -> Performance:
    """Notes starting in ``[start, start + seconds)``, shifted to time 0 and cut at the window's end."""
    keep = (performance.start >= start) & (performance.start < start + seconds)
    end = np.minimum(performance.end[keep], start + seconds) - start
    begin = performance.start[keep] - start
    return Performance.from_arrays(
        performance.pitch[keep], performance.velocity[keep], begin, np.maximum(end, begin + 0.01)
    )


@dataclass
class Crops:
    """Padded crops: ``performance [N, Lp]`` ids (no BOS), ``melody [N, Lm]`` ids, PAD = 0."""

    performance: Tensor
    melody: Tensor

    def __len__(self) -> int:
        return self.performance.shape[0]

    def select(self, index: Tensor) -> Crops:
        return Crops(self.performance[index], self.melody[index])

    def to(self, device: torch.device | str) -> Crops:
        """These crops on ``device`` (the same object when they are there already)."""
        if self.performance.device == torch.device(device):
            return self
        return Crops(self.performance.to(device), self.melody.to(device))


def _pad(rows: list[np.ndarray], length: int) -> Tensor:
    out = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : min(len(row), length)] = torch.from_numpy(row[:length])
    return out


def make_crops(
    pieces: list, *, seconds: float, max_tokens: int, per_piece: int, seed: int, augment: bool = False
) -> Crops:
    """``per_piece`` random windows of ``seconds`` from each piece (``piece.performance`` and ``piece.melody``).

    Performance ids are cut to ``max_tokens - 1`` (room for the decoder's BOS), melody frames to
    ``max_tokens``. With ``augment``, each crop is transposed by -3..+3 and stretched by 0.95-1.05.
    """
    if not pieces:
        raise BadInputError("make_crops needs at least one piece")
    rng = np.random.default_rng(seed)
    enc, menc = PerformanceEncoding(), MelodyEncoding()
    perf_rows, mel_rows = [], []
    for piece in pieces:
        for _ in range(per_piece):
            start = float(rng.uniform(0.0, max(piece.performance.duration - seconds, 0.0)))
            p, m = crop(piece.performance, start, seconds), crop(piece.melody, start, seconds)
            if len(p) == 0:
                continue
            if augment:
                p, m = augment_performances(p, m, rng=rng, pitch_range=(21, 108))
            perf_rows.append(enc.encode(p))
            mel_rows.append(menc.encode(m) if len(m) else np.array([menc.NO_EVENT]))
    return Crops(_pad(perf_rows, max_tokens - 1), _pad(mel_rows, max_tokens))
