"""The labelled image sets the loaders return, and the area mean that resizes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["LabelledImages", "area_mean"]


@dataclass(frozen=True)
class LabelledImages:
    """``images``: uint8, (N, H, W) grey or (N, C, H, W); ``labels``: int64 (N,), indices into ``classes``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: Path

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def area_mean(images: torch.Tensor, side: int) -> torch.Tensor:
    """Images [N, C, H, W] (float) to [N, C, side, side]: out[i, j] = mean of input rows floor(i H / side) ..
    ceil((i + 1) H / side) - 1 and the same columns (`adaptive_avg_pool2d`; disjoint blocks when side divides H, W)."""
    return torch.nn.functional.adaptive_avg_pool2d(images, side)
