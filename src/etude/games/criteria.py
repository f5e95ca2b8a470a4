"""Decision rules of the lola study's claims (Foerster et al., AAMAS 2018, arXiv:1709.04326).

Each rule is a pure function from measured numbers to the keyword arguments of ``Claim.decide``
(``measured``, ``holds``, ``conclusive``, ``note``); the thresholds are fixed here, before any run.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "COOPERATE",
    "MIN_PG",
    "MIN_RUNS",
    "coin_larger",
    "lola_cooperate",
    "lola_om",
    "mp_nash",
    "nl_defect",
    "pg_cooperate",
]

COOPERATE = -1.2
"""Reward per step above which a run (both agents) counts as cooperating (mutual defection is -2, mutual
cooperation -1; Table 1: LOLA-Ex -1.06, NL-Ex -1.98)."""
MIN_RUNS, MIN_STEPS = 50, 100
"""Exact runs and updates the IPD / matching-pennies claims need (the paper: 50 runs of 200 updates)."""
MIN_PG, MIN_PG_STEPS = 16, 100
"""Policy-gradient runs and updates the LOLA-PG / LOLA-OM claims need."""
MIN_COIN, MIN_COIN_STEPS = 8, 1000
"""Coin-game seeds and updates the coin claims need."""


def nl_defect(mean: float, half: float, sd: float, tft: float, runs: int, steps: int) -> dict:
    """Naive learners defect: mean final reward per step <= -1.9 (Table 1: NL-Ex -1.98)."""
    return {
        "measured": f"{mean:.3f} ± {half:.3f} (sd {sd:.2f}) per step over {runs} runs; "
        f"{100 * tft:.1f}% TFT-like (this project's rule, see lola_cooperate)",
        "holds": mean <= -1.9,
        "conclusive": runs >= MIN_RUNS and steps >= MIN_STEPS,
    }


def lola_cooperate(
    mean: float,
    half: float,
    sd: float,
    cooperating: float,
    tft: float,
    policy: Mapping[str, float],
    runs: int,
    steps: int,
) -> dict:
    """LOLA pairs cooperate: mean final reward >= -1.2 and >= 70% of runs with both rewards > -1.2."""
    return {
        "measured": f"{mean:.3f} ± {half:.3f} (sd {sd:.2f}); {100 * cooperating:.1f}% of runs cooperate; "
        f"{100 * tft:.1f}% TFT-like (this project's rule); median final P(C | state) of cooperating runs: "
        + ", ".join(f"{k} {v:.2f}" for k, v in policy.items()),
        "holds": mean >= COOPERATE and cooperating >= 0.7,
        "conclusive": runs >= MIN_RUNS and steps >= MIN_STEPS,
        "note": "TFT-like is this project's own rule (both agents P(C|CC) > .5, P(C|CD) < .5, P(C|DD) < .5); "
        "the paper does not state its rule, and no threshold rule of this kind reproduces its 20.8% TFT "
        "for naive learners, so the median final policy per state is reported instead.",
    }


def mp_nash(lola: float, naive: float, runs: int, steps: int) -> dict:
    """Matching pennies: >= 80% of LOLA runs and <= 10% of naive runs end at Nash (Table 1: 98.8% and 0%)."""
    return {
        "measured": f"converged: LOLA {100 * lola:.1f}%, NL {100 * naive:.1f}%",
        "holds": lola >= 0.8 and naive <= 0.1,
        "conclusive": runs >= MIN_RUNS and steps >= MIN_STEPS,
    }


def pg_cooperate(
    lola: float, naive: float, cooperating: float, cosine: float, runs: int, steps: int, note: str = ""
) -> dict:
    """LOLA-PG beats NL-PG by >= 0.3 per step (Table 1: -1.17 vs -1.98) and its sampled update points
    the way of the exact one (median cosine at initialization >= 0.5)."""
    return {
        "measured": f"LOLA-PG {lola:.3f}, NL-PG {naive:.3f} per step over {runs} runs "
        f"({100 * cooperating:.0f}% LOLA-PG runs cooperate); median cosine to exact LOLA update {cosine:.2f}",
        "holds": lola >= naive + 0.3 and cosine >= 0.5,
        "conclusive": runs >= MIN_PG and steps >= MIN_PG_STEPS,
        "note": note,
    }


def lola_om(om_lola: float, om_naive: float, pg_lola: float, cooperating: float, runs: int, steps: int) -> dict:
    """LOLA-OM beats NL-OM by 0.3 per step and is within 0.2 of LOLA-PG."""
    return {
        "measured": f"LOLA-OM {om_lola:.3f}, NL-OM {om_naive:.3f}, LOLA-PG {pg_lola:.3f} per step over {runs} runs "
        f"({100 * cooperating:.0f}% LOLA-OM runs cooperate)",
        "holds": om_lola >= om_naive + 0.3 and om_lola >= pg_lola - 0.2,
        "conclusive": runs >= MIN_PG and steps >= MIN_PG_STEPS,
        "note": "Each agent refits the other's 5 logits by maximum likelihood on the other's actions in the "
        "update's own DiCE rollouts; with DiCE the naive gradient does not involve the opponent's "
        "parameters, so NL-OM moves exactly as NL-PG.",
    }


def coin_larger(
    label: str, lola: float, naive: float, diff: float, half: float, seeds: int, steps: int, note: str = ""
) -> dict:
    """LOLA-PG above NL-PG in the coin game: the 95% interval of the difference of means lies above 0."""
    return {
        "measured": f"{label}: LOLA-PG {lola:.3f}, NL-PG {naive:.3f}; difference {diff:+.3f} ± {half:.3f} "
        f"(95%, {seeds} seeds each)",
        "holds": bool(diff - half > 0),
        "conclusive": seeds >= MIN_COIN and steps >= MIN_COIN_STEPS,
        "note": note,
    }
