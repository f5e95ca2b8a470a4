"""Decision rules of the bruno study's claims, fixed before any run (Korshunova et al., NeurIPS 2018).

Each rule maps measured numbers to ``(holds, conclusive)`` for ``Claim.decide``. A bound is
decided on a 95% interval: the claim holds when every interval clears its bound, fails when one
lies wholly on the wrong side, and is inconclusive otherwise; a run below ``MIN_STEPS`` training
steps (or the rule's minimum evaluation size) is inconclusive.
"""

from __future__ import annotations

import numpy as np

from etude.statistics import independent_difference, mean_interval, mean_se, paired_difference

__all__ = [
    "FEW_SHOT_FLOORS",
    "GP_MARGIN",
    "MIN_EPISODES",
    "MIN_SEQUENCES",
    "MIN_STEPS",
    "POSITIONS",
    "SAMPLE_FLOOR",
    "bpd_rule",
    "few_shot_rule",
    "gp_matches_tp_rule",
    "samples_rule",
    "tp_beats_gp_rule",
]

MIN_STEPS = 300
"""Training steps a claim needs."""
MIN_SEQUENCES = 100
"""Evaluation sequences per split the bits/dim claims need."""
MIN_EPISODES = 200
"""Few-shot episodes per setting the few-shot claims need."""
POSITIONS = (0, 1, 4, 19)
"""Numbers n of conditioning images at which bits/dim of image n + 1 are compared."""
FEW_SHOT_FLOORS = {1: 0.5, 5: 0.7}
"""5-way accuracy the TP model must clear on unseen classes, per number of shots (chance: 0.2)."""
GP_MARGIN = 0.05
"""Largest few-shot accuracy difference GP - TP that counts as 'about as well' (the official two-seed spread of
the TP model alone is 0.037 at 1 shot)."""
SAMPLE_FLOOR = 0.5
"""Fraction of a set's samples a pixel classifier must put in the set's class (chance over ten digits: 0.1)."""


def _tri(low: float, high: float, bound: float) -> int:
    """+1 when the interval lies above ``bound``, -1 when below it, 0 when it straddles it (or is NaN)."""
    if low > bound:
        return 1
    return -1 if high < bound else 0


def _combine(sides: list[int], enough: bool) -> tuple[bool, bool]:
    holds = all(s == 1 for s in sides)
    return holds, enough and (holds or any(s == -1 for s in sides))


def bpd_rule(seen: object, unseen: object, enough: bool) -> tuple[bool, bool]:
    """Bits/dim of image n + 1 given n images, per sequence [sequences, >= 20] on each split: holds when the mean
    strictly falls over n = 0, 1, 4, 19 and bpd(0) - bpd(19) exceeds 2 standard errors (paired over sequences)
    on both splits; ``enough``: >= MIN_STEPS steps and >= MIN_SEQUENCES sequences."""
    ok = True
    for b in (np.asarray(seen, dtype=float), np.asarray(unseen, dtype=float)):
        at = [float(b[:, n].mean()) for n in POSITIONS]
        gain, se = mean_se(b[:, 0] - b[:, 19])
        ok &= all(u > v for u, v in zip(at, at[1:])) and bool(gain > 2 * se)
    return ok, enough


def tp_beats_gp_rule(gp_minus_tp: object, enough: bool) -> tuple[bool, bool]:
    """Per-sequence mean bits/dim GP - TP on unseen classes (same sequences): holds if the mean exceeds 2 SE,
    fails if it is below -2 SE, otherwise inconclusive."""
    diff, se = mean_se(gp_minus_tp)
    return diff > 0, enough and bool(abs(diff) > 2 * se)


def few_shot_rule(one_shot: object, five_shot: object, enough: bool) -> tuple[bool, bool]:
    """Per-episode TP accuracies on unseen classes: each setting's 95% t interval above its floor in
    FEW_SHOT_FLOORS, and 5-shot above 1-shot (independent episodes, normal interval of the difference)."""
    sides = []
    for k, acc in ((1, one_shot), (5, five_shot)):
        _, low, high = mean_interval(acc)
        sides.append(_tri(low, high, FEW_SHOT_FLOORS[k]))
    _, low, high = independent_difference(five_shot, one_shot)
    sides.append(_tri(low, high, 0.0))
    return _combine(sides, enough)


def gp_matches_tp_rule(pairs: dict[int, tuple[object, object]], enough: bool) -> tuple[bool, bool]:
    """Equivalence: {shots: (TP per-episode accuracy, GP per-episode accuracy on the same episodes)}. Holds when
    every paired 95% interval of GP - TP lies inside [-GP_MARGIN, GP_MARGIN]; fails when one lies wholly outside
    it; otherwise inconclusive."""
    inside, outside = [], []
    for tp, gp in pairs.values():
        _, low, high = paired_difference(gp, tp)
        inside.append(-GP_MARGIN < low and high < GP_MARGIN)
        outside.append(low > GP_MARGIN or high < -GP_MARGIN)
    holds = all(inside)
    return holds, enough and (holds or any(outside))


def samples_rule(fractions: object, enough: bool) -> tuple[bool, bool]:
    """Per conditioning set, the fraction of its samples classified as its class: holds if the 95% t interval of
    the mean over sets lies above SAMPLE_FLOOR, fails if below, otherwise inconclusive (needs >= 2 sets)."""
    _, low, high = mean_interval(fractions)
    return _combine([_tri(low, high, SAMPLE_FLOOR)], enough)
