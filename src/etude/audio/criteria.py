"""Decision rules of the `amae` study's claims (Dieleman, van den Oord, Simonyan, NeurIPS 2018,
arXiv:1806.10474): pure functions from measured numbers to ``(holds, conclusive)`` for ``Claim.decide``.
The thresholds are fixed here, before any run; the audio judgements themselves (`judge_reconstruction`,
`judge_sample`) live in `etude.audio.metrics`.
"""

from __future__ import annotations

import math

import numpy as np

from etude.statistics import paired_difference

__all__ = [
    "PLAIN_VQ_MAX",
    "KEPT_MIN",
    "codebook_usage_rule",
    "information_bound_rule",
    "total_nll",
    "total_nll_rule",
    "audio_rule",
    "code_gain",
    "reconstruction_top_rule",
    "prediction_gap_text",
]

PLAIN_VQ_MAX = 0.10
"""Plain VQ-VAE collapses: at most this fraction of the K codes in use on held-out audio."""
KEPT_MIN = 0.25
"""AMAE and VQ with its remedies keep at least this fraction of the K codes in use."""


def codebook_usage_rule(usage: dict[str, int], codes: int, held_codes: int, enough: bool) -> tuple[bool, bool]:
    """Plain VQ uses <= PLAIN_VQ_MAX K codes, AMAE and VQ + EMA + k-means + restarts >= KEPT_MIN K.
    Conclusive when every model trained enough steps and at least 2K held-out codes were counted."""
    holds = (
        usage["vq"] <= PLAIN_VQ_MAX * codes
        and usage["amae"] >= KEPT_MIN * codes
        and usage["vq_ema_restart"] >= KEPT_MIN * codes
    )
    return bool(holds), bool(enough and held_codes >= 2 * codes)


def information_bound_rule(gains: dict[str, float], codes: int, hop: int, enough: bool) -> tuple[bool, bool, list[str]]:
    """Codes lower the NLL (AMAE's gain over the unconditional WaveNet > 0), and no model gains more than the
    bound log2(K) / hop bits per sample a K-way code every hop samples can carry. Returns (holds,
    conclusive, the models above the bound: a leak)."""
    bound = math.log2(codes) / hop
    leaks = [m for m, gain in gains.items() if not gain <= bound]
    return bool(gains["amae"] > 0 and not leaks), bool(enough), leaks


def total_nll(level_nlls: list[float], prior_bits: float, hops: list[int] | tuple[int, ...]) -> float:
    """Bits per sample of the whole stack: NLL_0 + (NLL_1 + ... + NLL_prior / hop_top ...) / hop_0."""
    total = prior_bits
    for nll, hop in reversed(list(zip(level_nlls, hops))):
        total = nll + total / hop
    return float(total)


def total_nll_rule(total: float, unconditional: float, enough: bool) -> tuple[bool, bool]:
    """An ADA pays for its codes: the stack's total NLL >= the unconditional WaveNet's (bits/sample)."""
    return bool(total >= unconditional), bool(enough)


def audio_rule(passes: bool, audible: bool) -> tuple[bool, bool]:
    """An audio claim holds when its clip passes its fixed judgement (`etude.audio.metrics`); inconclusive
    while the level-0 decoder is younger than the preset's min_audio_steps."""
    return bool(passes), bool(audible)


def code_gain(conditional: np.ndarray, unconditional: np.ndarray) -> dict[str, float]:
    """What the top codes tell their decoder: per held-out crop, the NLL (bits/symbol) of a decoder trained
    without codes minus the one trained with them (same size and steps); mean and 95% interval."""
    mean, low, high = paired_difference(np.asarray(unconditional), np.asarray(conditional))
    return {"mean": mean, "low": low, "high": high, "n": int(np.asarray(conditional).size)}


def reconstruction_top_rule(
    passes: bool, audible: bool, gain: dict[str, float] | None, top_steps: int, min_top_steps: int
) -> tuple[bool, bool]:
    """The top-level reconstruction passes its judgement (holds). It fails when it does not and either the
    codes carry nothing (the decoder with codes is no better than the one without: gain interval <= 0) or
    the top level trained at least min_top_steps; otherwise the level is too young (inconclusive).
    Inconclusive too while the level-0 decoder is younger than min_audio_steps."""
    if not audible:
        return bool(passes), False
    if passes:
        return True, True
    carries_nothing = gain is not None and gain["high"] <= 0
    return False, bool(carries_nothing or top_steps >= min_top_steps)


def prediction_gap_text(decoder_db: float, needed_db: float | None) -> str:
    """One sentence naming a decoder's teacher-forced prediction error beside what a free-running model
    needs on the same held-out clip (`etude.audio.ceiling.calibrate`)."""
    if needed_db is None:
        return (
            f"level-0 prediction error {decoder_db:.1f} dB teacher-forced; no linear predictor of the calibration "
            "kept partials on its own output, so no prediction-error target was measured"
        )
    gap = decoder_db - needed_db
    return (
        f"level-0 prediction error {decoder_db:.1f} dB teacher-forced; a free-running model needs <= {needed_db:.1f} dB "
        f"on this held-out clip to keep partials: "
        + (
            f"{gap:.1f} dB short"
            if gap > 0
            else f"{-gap:.1f} dB better, so prediction error alone does not explain a miss"
        )
    )
