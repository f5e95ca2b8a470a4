"""Decision rules of the transformer_ae study's claims (Choi et al., ICML 2020, arXiv:1912.05537).

Each rule maps measured numbers to ``(holds, conclusive)`` for ``Claim.decide``; the thresholds
are fixed here, before any run. Paired differences (over held-out crops or scores) are decided
on their 95% t interval: it lies above the margin (holds), below it (fails), or straddles it
(inconclusive), and a claim with fewer than ``MIN_PAIRS`` pairs is inconclusive.
"""

from __future__ import annotations

import numpy as np

from etude.statistics import paired_t_interval

__all__ = [
    "COPY_RATIO",
    "HELD_TO_END",
    "IN_RANGE",
    "LIKENESS_NOTES",
    "LIKENESS_RATIOS",
    "MARGIN",
    "MIN_PAIRS",
    "ORPHAN_NOTE_OFFS",
    "SMALL",
    "VELOCITY_DISTANCE",
    "better_rule",
    "copy_rule",
    "direction_rule",
    "interval_rule",
    "music_like_rule",
    "nll_gain",
    "range_rule",
    "style_nll_rule",
    "transfer_rule",
]

SMALL = 0.05
"""A NLL difference (nats/token) under which one seed cannot decide a claim."""
MARGIN = 0.01
"""The NLL gain (nats/token) conditioning on the performance must show: the interval's low end above it."""
MIN_PAIRS = 16
"""Held-out pairs (crops or scores) a paired generation claim needs to be decided."""
IN_RANGE = 0.95
"""Fraction of generated notes that must lie inside the training corpus's pitch range."""
COPY_RATIO = 0.5
"""unpooled_copies: the unpooled model's held-out NLL at most this fraction of the pooled model's."""

# music_like_data, fixed before any run. A ratio r bounds generated/data to [1/r, r].
LIKENESS_RATIOS = {"polyphony": 2.0, "note_seconds": 2.0, "ioi_seconds": 2.0, "pitch_range": 1.5}
"""Polyphony, median note length and median inter-onset interval within a factor 2 of held-out data's:
a factor 2 is one note value (eighths for quarters) or a four-voice texture doubled to eight, which a
listener hears as another texture; the wash of issue 25 stood at 8x (polyphony) and 5x (length). The
mean pitch span per sample within a factor 1.5 (a chorale crop spans about two octaves; 1.5 allows an
octave more or less of it, and rules out the full keyboard of noise)."""
VELOCITY_DISTANCE = 0.4
"""Total-variation distance ``0.5 sum_k |p_k - q_k|`` of the 8-bin velocity histograms at most 0.4: under
40% of the generated notes would need another loudness bin (uniform velocities against a peaked corpus
score about 0.6-0.8)."""
HELD_TO_END = (2.0, 0.05)
"""Share of notes held to the sample's end at most ``2 x data's + 0.05`` (data's share comes from notes
cut at the window's end; issue 25's outputs held 32%)."""
ORPHAN_NOTE_OFFS = 0.1
"""Share of generated NOTE_OFF ids that close no sounding note at most data's share + 0.1 (chorale crops:
0 by construction, so 0.1; windows cut from a token stream start mid-note and have some; issue 25's
outputs: 55%)."""
LIKENESS_NOTES = 50
"""Notes each side needs for music_like_data to be decided."""


def nll_gain(worse: list[np.ndarray], better: list[np.ndarray]) -> dict:
    """Per-crop NLL(worse) - NLL(better) averaged over the seeds both have, its interval, and each seed's mean gap."""
    seeds = min(len(worse), len(better))
    gaps = [np.asarray(w) - np.asarray(b) for w, b in zip(worse[:seeds], better[:seeds])]
    return {**paired_t_interval(np.mean(gaps, axis=0)), "seed_gaps": [float(np.nanmean(g)) for g in gaps]}


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


def copy_rule(unpooled: float, pooled: float, decide: bool) -> tuple[bool, bool]:
    """Criterion of unpooled_copies: ``unpooled / pooled <= COPY_RATIO``; decided only when ``decide``."""
    return bool(unpooled / pooled <= COPY_RATIO), bool(decide and np.isfinite(unpooled / pooled))


def music_like_rule(generated: dict, data: dict) -> dict:
    """Criterion of music_like_data over two ``etude.music.likeness.music_figures`` dicts.

    Each check is ``ok`` when: polyphony, note length, inter-onset interval and pitch range lie in
    ``[data / r, data * r]`` (``LIKENESS_RATIOS``); the velocity histograms' total-variation distance
    is at most ``VELOCITY_DISTANCE``; the share held to the end is at most ``a data + b``
    (``HELD_TO_END``); orphan note-offs at most data's + ``ORPHAN_NOTE_OFFS``. A NaN figure fails its check.
    Holds when every check is ok; conclusive when both sides have ``LIKENESS_NOTES`` notes.

    :returns: ``{"holds", "conclusive", "checks": {name: {"generated", "data", "bound", "ok"}}}``.
    """
    checks: dict[str, dict] = {}
    for name, r in LIKENESS_RATIOS.items():
        g, d = float(generated[name]), float(data[name])
        bound = [d / r, d * r]
        checks[name] = {"generated": g, "data": d, "bound": bound, "ok": bool(bound[0] <= g <= bound[1])}
    p, q = np.asarray(generated["velocity_histogram"], float), np.asarray(data["velocity_histogram"], float)
    tv = float(0.5 * np.abs(p - q).sum())
    checks["velocity_histogram"] = {
        "generated": tv,
        "data": 0.0,
        "bound": [0.0, VELOCITY_DISTANCE],
        "ok": bool(tv <= VELOCITY_DISTANCE),
    }
    a, b = HELD_TO_END
    held, limit = float(generated["held_to_end"]), a * float(data["held_to_end"]) + b
    checks["held_to_end"] = {
        "generated": held,
        "data": float(data["held_to_end"]),
        "bound": [0.0, limit],
        "ok": bool(held <= limit),
    }
    orphans, before = float(generated["orphan_note_offs"]), float(data.get("orphan_note_offs", 0.0))
    limit = (before if np.isfinite(before) else 0.0) + ORPHAN_NOTE_OFFS
    checks["orphan_note_offs"] = {
        "generated": orphans,
        "data": before,
        "bound": [0.0, limit],
        "ok": bool(orphans <= limit),
    }
    conclusive = min(int(generated["notes"]), int(data["notes"])) >= LIKENESS_NOTES
    return {"holds": all(c["ok"] for c in checks.values()), "conclusive": conclusive, "checks": checks}


def transfer_rule(generated: dict, a: dict, b: dict) -> dict:
    """Criterion of style_transfer: per pair ``|gen - A| - |gen - B|`` of mean velocity and of notes/s.

    Each of ``generated``, ``a``, ``b`` maps ``"velocity"`` and ``"notes_per_second"`` to one value
    per pair (A: the melody's own performance, B: the style's). The difference is > 0 when the
    generation is closer to B; holds when both 95% t intervals lie above 0 (``interval_rule``),
    fails when either lies below 0; fewer than ``MIN_PAIRS`` pairs is inconclusive.

    :returns: ``{"holds", "conclusive", "velocity", "notes_per_second"}`` (the two intervals).
    """
    out: dict = {}
    for feature in ("velocity", "notes_per_second"):
        g, x, y = (np.asarray(v[feature], dtype=np.float64) for v in (generated, a, b))
        out[feature] = paired_t_interval(np.abs(g - x) - np.abs(g - y))
    holds, conclusive = direction_rule(out["velocity"], out["notes_per_second"])
    return {"holds": holds, "conclusive": conclusive, **out}
