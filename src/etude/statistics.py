"""Small statistics shared by the studies' criteria: the mean of paired differences and its interval."""

from __future__ import annotations

import numpy as np
import torch

from etude.errors import BadInputError

__all__ = ["paired_difference"]


def _vector(name: str, value: object) -> np.ndarray:
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise BadInputError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    return arr.astype(np.float64)


def paired_difference(a: object, b: object, z: float = 1.96) -> tuple[float, float, float]:
    """Mean of a_i - b_i over paired values and its interval mean -+ z SE (z = 1.96: the normal 95% interval).

    Returns (mean, low, high); SE = sd(a - b) / sqrt(n) (needs n >= 2).
    """
    aa, bb = _vector("a", a), _vector("b", b)
    if aa.shape != bb.shape:
        raise BadInputError(f"a and b must be paired (one length), got {aa.shape} and {bb.shape}")
    d = aa - bb
    if d.shape[0] < 2:
        raise BadInputError(f"paired_difference needs at least 2 pairs, got {d.shape[0]}")
    mean, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.shape[0]))
    return mean, mean - z * se, mean + z * se
