"""Decision rules of the metavae study's claims, fixed before any run (Wu, Choi, Goodman, Ermon, AAAI 2020).

Each rule maps measured numbers to ``(holds, conclusive)`` for ``Claim.decide``. Figures per method
are ``{method: [value per seed]}``; the paper's baselines for codes within a family are the Neural
Statistician (NS) and the Variational Homoencoder (VHE) (official repository
github.com/mhw32/meta-inference-public, ``images/invariance.png``); a run with fewer than
``MIN_SEEDS`` seeds or ``MIN_STEPS`` Adam steps per model is inconclusive.
"""

from __future__ import annotations

import numpy as np

from etude.statistics import paired_difference

__all__ = [
    "MIN_DATASETS",
    "MIN_SEEDS",
    "MIN_STEPS",
    "RIVALS",
    "SCALE_MARGIN",
    "beats_rivals_rule",
    "mog_rule",
    "scale_rule",
    "stability_rule",
]

MIN_SEEDS = 3
"""Seeds a claim needs (the ranking of two models flips with the seed on small runs)."""
MIN_STEPS = 500
"""Adam steps per model a claim needs."""
MIN_DATASETS = 20
"""Held-out MoG datasets per seed the clustering claim needs."""
RIVALS = ("NS", "VHE")
"""The paper's baselines for representations of new distributions of a family."""
SCALE_MARGIN = 0.2
"""Probe accuracy MetaVAE must lead NS and VHE by on unseen large scales (the official figure: >= 0.3 at every
unseen scale of the contiguous split)."""


def _enough(seeds: int, steps: int) -> bool:
    return seeds >= MIN_SEEDS and steps >= MIN_STEPS


def mog_rule(vae: object, metavae: object, seeds: int, datasets: int, steps: int) -> tuple[bool, bool, dict]:
    """Clustering error VAE - MetaVAE paired over held-out datasets (every seed's), 95% normal interval.

    Holds if the interval lies above 0, fails if below 0, otherwise inconclusive; also inconclusive
    below MIN_SEEDS seeds, MIN_DATASETS datasets per seed or MIN_STEPS steps.
    :returns: (holds, conclusive, {'mean', 'low', 'high', 'pairs'}).
    """
    mean, low, high = paired_difference(vae, metavae)
    known = low > 0 or high < 0
    figures = {"mean": mean, "low": low, "high": high, "pairs": len(np.asarray(vae))}
    return mean > 0, _enough(seeds, steps) and datasets >= MIN_DATASETS and known, figures


def beats_rivals_rule(acc: dict[str, list[float]], steps: int, rivals: tuple[str, ...] = RIVALS) -> tuple[bool, bool]:
    """Probe accuracy: MetaVAE's mean over seeds above every rival's mean and MetaVAE ahead of all rivals in
    every seed (a tie is no win)."""
    meta = np.asarray(acc["MetaVAE"], dtype=float)
    others = np.array([acc[k] for k in rivals], dtype=float)
    holds = bool(meta.mean() > others.mean(1).max() and (meta > others.max(0)).all())
    return holds, _enough(len(meta), steps)


def scale_rule(acc: dict[str, list[float]], steps: int, rivals: tuple[str, ...] = RIVALS) -> tuple[bool, bool]:
    """Probe accuracy on unseen large scales: MetaVAE's mean over seeds >= the best rival's mean + SCALE_MARGIN."""
    meta = float(np.mean(acc["MetaVAE"]))
    best = max(float(np.mean(acc[k])) for k in rivals)
    return meta >= best + SCALE_MARGIN, _enough(len(acc["MetaVAE"]), steps)


def stability_rule(ratio: dict[str, list[float]], steps: int, rivals: tuple[str, ...] = RIVALS) -> tuple[bool, bool]:
    """Code stability (within-image / between-image code distance, lower = codes stay put): MetaVAE's mean over
    seeds below every rival's mean and MetaVAE below all rivals in every seed."""
    meta = np.asarray(ratio["MetaVAE"], dtype=float)
    others = np.array([ratio[k] for k in rivals], dtype=float)
    holds = bool(meta.mean() < others.mean(1).min() and (meta < others.min(0)).all())
    return holds, _enough(len(meta), steps)
