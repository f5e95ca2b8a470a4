"""Similarity and sanity metrics of performances.

Overlapping-area (OA) similarity, Choi et al., "Encoding Musical Style with Transformer
Autoencoders" (ICML 2020, arXiv:1912.05537, Sec. 5.2), after Yang and Lerch (2018): each
performance is cut into sliding windows (2 s long, 1 s hop); in each window eight features
are measured (note density, pitch range, mean and variance of pitch, velocity and duration);
each feature's values over the windows are summarized by a Gaussian; the similarity of two
performances is the mean over features of the overlapping area of their two Gaussians,

    OA(N1, N2) = integral of min(N1(x), N2(x)) dx   (1 for equal Gaussians, -> 0 when apart).

A feature's standard deviation is floored at ``1e-3 * (1 + |mean|)`` so constant features
(a zero variance) compare as narrow Gaussians: equal constants give 1, different ones ~0.

Sanity metrics: pitch-class entropy (bits), mean polyphony while sounding, empty-beat rate.
"""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np

from etude.errors import BadInputError
from etude.music.performance import Performance

__all__ = [
    "FEATURES",
    "empty_beat_rate",
    "gaussian_overlap",
    "mean_velocity",
    "note_density",
    "oa_similarity",
    "pitch_class_entropy",
    "pitch_range_fraction",
    "polyphony",
    "sanity_metrics",
    "window_features",
]

FEATURES = (
    "note_density",
    "pitch_range",
    "pitch_mean",
    "pitch_variance",
    "velocity_mean",
    "velocity_variance",
    "duration_mean",
    "duration_variance",
)


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def gaussian_overlap(mean1: float, std1: float, mean2: float, std2: float) -> float:
    """Overlapping area of N(mean1, std1^2) and N(mean2, std2^2), in closed form.

    The densities cross where ``log N1 = log N2``, a quadratic in ``x`` (one root when the
    stds are equal). With ``std1 <= std2`` the narrower density is the smaller one outside the
    roots ``x1 <= x2`` and the larger inside, so
    ``OA = F1(x1) + F2(x2) - F2(x1) + 1 - F1(x2)``, with F the CDFs.

    :raises BadInputError: when a std is not > 0 or a value is not finite.
    """
    values = (mean1, std1, mean2, std2)
    if not all(math.isfinite(v) for v in values) or not (std1 > 0 and std2 > 0):
        raise BadInputError(f"gaussian_overlap needs finite means and stds > 0, got {values}")
    if std1 > std2:
        mean1, std1, mean2, std2 = mean2, std2, mean1, std1

    def cdf(x: float, m: float, s: float) -> float:
        return _phi((x - m) / s)

    if math.isclose(std1, std2, rel_tol=1e-12):
        if mean1 == mean2:
            return 1.0
        return 2.0 * _phi(-abs(mean1 - mean2) / (2.0 * std1))
    # a x^2 + b x + c = 0 from log N1(x) = log N2(x)
    a = 1.0 / std2**2 - 1.0 / std1**2
    b = 2.0 * (mean1 / std1**2 - mean2 / std2**2)
    c = mean2**2 / std2**2 - mean1**2 / std1**2 - 2.0 * math.log(std1 / std2)
    root = math.sqrt(max(b * b - 4.0 * a * c, 0.0))
    q = -0.5 * (b + math.copysign(root, b))  # the stable form of the quadratic formula
    x1, x2 = sorted((q / a, c / q))
    wide_inside = cdf(x2, mean2, std2) - cdf(x1, mean2, std2)  # between the roots the wide one is lower
    narrow_outside = cdf(x1, mean1, std1) + 1.0 - cdf(x2, mean1, std1)  # outside them the narrow one is
    return float(min(max(wide_inside + narrow_outside, 0.0), 1.0))


def window_features(performance: Performance, window: float = 2.0, hop: float = 1.0) -> np.ndarray:
    """The eight ``FEATURES`` per window, shape ``[windows, 8]``; windows start at 0, hop, 2 hop, ...

    A window holds the notes whose onset falls in ``[t, t + window)``; windows without notes
    are left out. Density is in notes per second, durations in seconds.
    """
    if not isinstance(performance, Performance):
        raise BadInputError(f"performance must be a Performance, got {type(performance).__name__}")
    if not (window > 0 and hop > 0):
        raise BadInputError(f"window and hop must be > 0 seconds, got {window!r} and {hop!r}")
    if not len(performance):
        return np.zeros((0, len(FEATURES)))
    starts = np.arange(0.0, float(performance.start.max()) + hop / 2, hop)
    lo = np.searchsorted(performance.start, starts, side="left")
    hi = np.searchsorted(performance.start, starts + window, side="left")
    pitch, velocity = performance.pitch.astype(float), performance.velocity.astype(float)
    duration = performance.end - performance.start
    rows = []
    for i, j in zip(lo.tolist(), hi.tolist()):
        if j > i:
            p, v, d = pitch[i:j], velocity[i:j], duration[i:j]
            rows.append(((j - i) / window, p.max() - p.min(), p.mean(), p.var(), v.mean(), v.var(), d.mean(), d.var()))
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES))


def _gaussian(values: np.ndarray) -> tuple[float, float]:
    mean = float(values.mean())
    return mean, max(float(values.std()), 1e-3 * (1.0 + abs(mean)))


@overload
def oa_similarity(
    a: Performance, b: Performance, window: float = ..., hop: float = ..., per_feature: Literal[False] = ...
) -> float: ...
@overload
def oa_similarity(
    a: Performance, b: Performance, window: float = ..., hop: float = ..., *, per_feature: Literal[True]
) -> dict[str, float]: ...
def oa_similarity(
    a: Performance, b: Performance, window: float = 2.0, hop: float = 1.0, per_feature: bool = False
) -> float | dict[str, float]:
    """Mean overlapping area of the per-feature Gaussians of two performances, in [0, 1].

    :param a: a performance (e.g. generated); ``b``: the other (e.g. the conditioning one).
    :param window: window length in seconds (default 2).
    :param hop: hop between windows in seconds (default 1).
    :param per_feature: also return each feature's OA (a dict with 'oa' and one key per feature).
    :raises BadInputError: when a performance has no notes.
    """
    fa, fb = window_features(a, window, hop), window_features(b, window, hop)
    for name, f in (("a", fa), ("b", fb)):
        if not f.shape[0]:
            raise BadInputError(f"oa_similarity: performance {name} has no notes")
    overlaps = [gaussian_overlap(*_gaussian(fa[:, k]), *_gaussian(fb[:, k])) for k in range(len(FEATURES))]
    oa = float(np.mean(overlaps))
    return {"oa": oa, **dict(zip(FEATURES, overlaps))} if per_feature else oa


def pitch_range_fraction(performances: list[Performance], low: int, high: int) -> float:
    """Fraction of all notes of ``performances`` with ``low <= pitch <= high``: ``#{i: low <= p_i <= high} / N``.

    NaN when there are no notes.
    """
    if not low <= high:
        raise BadInputError(f"pitch range needs low <= high, got {low!r}..{high!r}")
    pitches = np.concatenate([np.asarray(p.pitch) for p in performances]) if performances else np.zeros(0)
    return float(((pitches >= low) & (pitches <= high)).mean()) if pitches.size else float("nan")


def mean_velocity(performance: Performance) -> float:
    """Mean MIDI velocity of the notes (NaN without notes)."""
    return float(performance.velocity.mean()) if len(performance) else float("nan")


def note_density(performance: Performance) -> float:
    """Notes per second, ``N / max_i end_i`` (NaN without notes)."""
    return len(performance) / max(float(performance.end.max()), 1e-3) if len(performance) else float("nan")


def pitch_class_entropy(performance: Performance) -> float:
    """Entropy in bits of the pitch-class histogram of the notes (0 .. log2 12 = 3.585)."""
    if not len(performance):
        return 0.0
    counts = np.bincount(performance.pitch % 12, minlength=12).astype(float)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def polyphony(performance: Performance) -> float:
    """Mean number of sounding notes over the time when at least one sounds."""
    if not len(performance):
        return 0.0
    times = np.concatenate([performance.start, performance.end])
    change = np.concatenate([np.ones(len(performance)), -np.ones(len(performance))])
    order = np.lexsort((change, times))  # offsets before onsets at one time
    times, sounding = times[order], np.cumsum(change[order])
    spans = np.diff(times)
    busy = sounding[:-1] > 0
    return float((sounding[:-1] * spans)[busy].sum() / spans[busy].sum()) if spans[busy].sum() > 0 else 0.0


def empty_beat_rate(performance: Performance, beat: float = 0.5) -> float:
    """Fraction of beats (``beat`` seconds each, from 0 to the last offset) in which no note sounds."""
    if not beat > 0:
        raise BadInputError(f"beat must be > 0 seconds, got {beat!r}")
    if not len(performance):
        return 1.0
    n = max(int(math.ceil(performance.duration / beat - 1e-9)), 1)
    busy = np.zeros(n, dtype=bool)  # beat k, [k beat, (k + 1) beat), is busy when a note overlaps it
    for s, e in zip(performance.start.tolist(), performance.end.tolist()):
        busy[int(s // beat) : int(math.ceil(e / beat - 1e-9))] = True
    return float(1.0 - busy.mean())


def sanity_metrics(performance: Performance, beat: float = 0.5) -> dict[str, float]:
    """Notes, duration, pitch-class entropy, polyphony and empty-beat rate in one dict."""
    return {
        "notes": float(len(performance)),
        "seconds": performance.duration,
        "pitch_class_entropy": pitch_class_entropy(performance),
        "polyphony": polyphony(performance),
        "empty_beat_rate": empty_beat_rate(performance, beat),
    }
