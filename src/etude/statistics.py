"""Small statistics shared by the studies' criteria: the mean of paired differences and its interval."""

from __future__ import annotations

import numpy as np
import torch

from etude.errors import BadInputError

__all__ = ["interval_text", "paired_difference", "paired_t_interval"]


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


def paired_t_interval(diff: object) -> dict:
    """Mean of paired differences (NaNs dropped) and its 95% t interval ``mean -+ t_{0.975, n-1} sd / sqrt(n)``.

    Returns ``{"mean", "low", "high", "n"}``; the bounds are NaN for n < 2.
    """
    from scipy.stats import t

    d = np.asarray(diff, dtype=np.float64).reshape(-1)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return {
            "mean": float(d.mean()) if d.size else float("nan"),
            "low": float("nan"),
            "high": float("nan"),
            "n": int(d.size),
        }
    mean, low, high = paired_difference(d, np.zeros_like(d), z=float(t.ppf(0.975, d.size - 1)))
    return {"mean": mean, "low": low, "high": high, "n": int(d.size)}


def interval_text(d: dict) -> str:
    """``mean [low, high]`` of a ``paired_t_interval`` with signs and 3 decimals."""
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
