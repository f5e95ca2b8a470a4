"""Small statistics shared by the studies' criteria: means, paired and independent differences with their
intervals, and a permutation p-value."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from etude.errors import BadInputError

__all__ = [
    "difference_interval",
    "independent_difference",
    "interval_text",
    "mean_half_width",
    "mean_interval",
    "mean_se",
    "paired_difference",
    "paired_t_interval",
    "permutation_pvalue",
]


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


def mean_half_width(values: object, z: float = 1.96) -> tuple[float, float]:
    """Mean of ``values`` (1-D) and the half-width of its normal interval, z sd / sqrt(n) (NaN for n = 1)."""
    mean, se = mean_se(values)
    return mean, z * se


def difference_interval(a: object, b: object, z: float = 1.96) -> tuple[float, float]:
    """mean(a) - mean(b) over two independent samples and the half-width of its normal (Welch) interval,
    z sqrt(s_a^2 / n_a + s_b^2 / n_b) (NaN when either sample has fewer than 2 values)."""
    aa, bb = _vector("a", a), _vector("b", b)
    diff = float(aa.mean() - bb.mean())
    if aa.shape[0] < 2 or bb.shape[0] < 2:
        return diff, float("nan")
    return diff, z * float(np.sqrt(aa.var(ddof=1) / aa.shape[0] + bb.var(ddof=1) / bb.shape[0]))


def independent_difference(a: object, b: object, z: float = 1.96) -> tuple[float, float, float]:
    """`difference_interval` as (mean(a) - mean(b), low, high); needs at least 2 values in each sample."""
    d, half = difference_interval(a, b, z)
    if not np.isfinite(half):
        raise BadInputError("independent_difference needs at least 2 values in each sample")
    return d, d - half, d + half


def permutation_pvalue(
    statistic: Callable[[np.ndarray], float], labels: Sequence[int], permutations: int = 999, seed: int = 0
) -> tuple[float, float]:
    """Observed statistic(labels) and its one-sided permutation p-value.

    p = (1 + #{pi : statistic(pi(labels)) >= observed}) / (1 + permutations), the labels shuffled
    uniformly ``permutations`` times with a seeded generator (exact-size, never zero).
    """
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] < 2 or permutations < 1:
        raise BadInputError(
            f"permutation_pvalue needs >= 2 labels and >= 1 permutation, got {lab.shape}, {permutations}"
        )
    observed = float(statistic(lab))
    rng = np.random.default_rng(seed)
    above = sum(float(statistic(rng.permutation(lab))) >= observed - 1e-12 for _ in range(permutations))
    return observed, (1 + above) / (1 + permutations)


def paired_t_interval(diff: object) -> dict:
    """Mean of paired differences (NaNs dropped) and its 95% t interval (`mean_interval`), as a dict.

    Returns ``{"mean", "low", "high", "n"}``; the bounds are NaN for n < 2.
    """
    d = np.asarray(diff, dtype=np.float64).reshape(-1)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"mean": float("nan"), "low": float("nan"), "high": float("nan"), "n": 0}
    mean, low, high = mean_interval(d)
    return {"mean": mean, "low": low, "high": high, "n": int(d.size)}


def interval_text(d: dict) -> str:
    """``mean [low, high]`` of a ``paired_t_interval`` with signs and 3 decimals."""
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
