"""The labelled image sets the loaders return."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["LabelledImages"]


@dataclass(frozen=True)
class LabelledImages:
    """``images``: uint8, (N, H, W) grey or (N, C, H, W); ``labels``: int64 (N,), indices into ``classes``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: Path

    def __len__(self) -> int:
        return int(self.labels.shape[0])
