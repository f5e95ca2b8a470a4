"""Decision rules of the transformer_ae study's claims (Choi et al., ICML 2020, arXiv:1912.05537).

Each rule maps measured numbers to ``(holds, conclusive)`` for ``Claim.decide``; the thresholds
are fixed here, before any run. Paired differences (over held-out crops or scores) are decided
on their 95% t interval: it lies above the margin (holds), below it (fails), or straddles it
(inconclusive), and a claim with fewer than ``MIN_PAIRS`` pairs is inconclusive.
"""

from __future__ import annotations

import numpy as np

from etude.statistics import paired_difference

__all__ = [
    "IN_RANGE",
    "MARGIN",
    "MIN_PAIRS",
    "SMALL",
    "better_rule",
    "ci_text",
    "direction_rule",
    "interval_rule",
    "nll_gain",
    "paired_interval",
    "range_rule",
    "style_nll_rule",
]

SMALL = 0.05
"""A NLL difference (nats/token) under which one seed cannot decide a claim."""
MARGIN = 0.01
"""The NLL gain (nats/token) conditioning on the performance must show: the interval's low end above it."""
MIN_PAIRS = 16
"""Held-out pairs (crops or scores) a paired generation claim needs to be decided."""
IN_RANGE = 0.95
"""Fraction of generated notes that must lie inside the training corpus's pitch range."""


def paired_interval(diff: object) -> dict:
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


def nll_gain(worse: list[np.ndarray], better: list[np.ndarray]) -> dict:
    """Per-crop NLL(worse) - NLL(better) averaged over the seeds both have, its interval, and each seed's mean gap."""
    seeds = min(len(worse), len(better))
    gaps = [np.asarray(w) - np.asarray(b) for w, b in zip(worse[:seeds], better[:seeds])]
    return {**paired_interval(np.mean(gaps, axis=0)), "seed_gaps": [float(np.nanmean(g)) for g in gaps]}


def interval_rule(diff: dict, margin: float = 0.0, min_n: int = MIN_PAIRS) -> tuple[bool, bool]:
    """``(holds, conclusive)``: holds when the interval lies above ``margin``, fails when below; else inconclusive."""
    if diff["n"] < min_n or not np.isfinite(diff["low"]):
        return False, False
    if diff["low"] > margin:
        return True, True
    return False, bool(diff["high"] < margin)


def style_nll_rule(gain: dict, enough: bool) -> tuple[bool, bool]:
    """Criterion of style_lowers_nll: >= 2 seeds, interval above MARGIN and every seed's gap > 0."""
    holds, conclusive = interval_rule(gain, margin=MARGIN)
    if not enough or len(gain["seed_gaps"]) < 2 or (holds and min(gain["seed_gaps"]) <= 0):
        return False, False
    return holds, conclusive


def better_rule(gain: dict, enough: bool) -> tuple[bool, bool]:
    """Criterion of the other NLL claims: interval above 0; with 1 seed a mean gap < SMALL is inconclusive."""
    holds, conclusive = interval_rule(gain)
    if not enough or (len(gain["seed_gaps"]) < 2 and abs(gain["mean"]) < SMALL):
        return False, False
    return holds, conclusive


def direction_rule(velocity: dict, density: dict) -> tuple[bool, bool]:
    """Criterion of style_direction: both intervals above 0 hold; either below 0 fails."""
    rules = [interval_rule(velocity), interval_rule(density)]
    if all(h for h, _ in rules):
        return True, True
    return False, any(c and not h for h, c in rules)


def range_rule(fraction: float, notes: int) -> tuple[bool, bool]:
    """Criterion of pitch_in_range: at least IN_RANGE of >= 50 generated notes inside the training range."""
    return bool(fraction >= IN_RANGE), bool(notes >= 50 and np.isfinite(fraction))


def ci_text(d: dict) -> str:
    """``mean [low, high]`` of a ``paired_interval`` with signs and 3 decimals."""
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
