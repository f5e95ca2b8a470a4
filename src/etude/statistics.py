"""Small statistics shared by the studies' criteria: means, paired differences and their intervals."""

from __future__ import annotations

import numpy as np
import torch

from etude.errors import BadInputError

__all__ = ["independent_difference", "mean_interval", "mean_se", "paired_difference"]


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


def mean_se(values: object) -> tuple[float, float]:
    """Mean and standard error sd / sqrt(n) (sd with n - 1) of a 1-D sample; the SE is NaN for one value."""
    v = _vector("values", values)
    se = float(v.std(ddof=1) / np.sqrt(v.shape[0])) if v.shape[0] > 1 else float("nan")
    return float(v.mean()), se


def mean_interval(values: object, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of a 1-D sample and its Student-t interval mean -+ t_{(1+level)/2, n-1} SE: (mean, low, high).

    The bounds are NaN for a single value; a constant sample has a zero-width interval.
    """
    from scipy.stats import t

    if not 0 < level < 1:
        raise BadInputError(f"level must be in (0, 1), got {level!r}")
    mean, se = mean_se(values)
    if not np.isfinite(se):
        return mean, float("nan"), float("nan")
    n = _vector("values", values).shape[0]
    half = float(t.ppf((1 + level) / 2, n - 1)) * se
    return mean, mean - half, mean + half


def independent_difference(a: object, b: object, z: float = 1.96) -> tuple[float, float, float]:
    """Difference of the means of two independent samples, mean(a) - mean(b), and its interval -+ z SE with
    SE = sqrt(se_a^2 + se_b^2) (Welch's standard error; z = 1.96: the normal 95% interval). Needs n >= 2 each."""
    (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
    if not (np.isfinite(sa) and np.isfinite(sb)):
        raise BadInputError("independent_difference needs at least 2 values in each sample")
    d, se = ma - mb, float(np.hypot(sa, sb))
    return d, d - z * se, d + z * se
