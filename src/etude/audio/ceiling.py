"""What a free-running autoregressive model must predict to keep partials: a calibration on held-out audio,
and the teacher-forced prediction error of a mu-law decoder to compare with it.

An autoregressive model trained with teacher forcing is judged, when it generates, on its own output.
Whether that output carries partials (tonal, low local flatness; `etude.audio.metrics`) depends on how
well it predicts the next sample. Linear predictors (LPC, order p, autocorrelation method, Makhoul 1975,
Proc. IEEE 63(4), Eq. 38-40), one per 64 ms block of held-out audio, give a family of models of known
quality: a lower order, or poles shrunk by gamma (a_i -> gamma^i a_i, bandwidth expansion), raises the
prediction error and broadens the resonances. Each member runs on its own output driven by white noise of
its residual variance,

    y_t = sum_i gamma^i a_i y_{t-i} + e_t,  e_t ~ N(0, sigma_gamma^2),
    error_gamma = 10 log10( mean_t (x_t - sum_i gamma^i a_i x_{t-i})^2 / mean_t x_t^2 )  dB,

and the prediction error a free-running model needs is the largest error_gamma whose output passes the
tonality line (local flatness at most the mu-law round trip's + half the gap to white noise's, as the
study's audio criteria). A decoder's teacher-forced error is measured the same way from its predictive
mean E[x_{t+1} | x_{<=t}, codes] (the mu-law amplitudes weighted by its softmax).
"""

from __future__ import annotations

import numpy as np
import torch

from etude.audio.metrics import local_flatness, mulaw_round_trip, white_noise_like
from etude.audio.mulaw import mulaw_decode
from etude.errors import BadInputError

__all__ = ["GAMMAS", "ORDERS", "BLOCK", "lpc", "blockwise", "calibrate", "decoder_prediction_error_db"]

GAMMAS = (1.0, 0.999, 0.995, 0.99, 0.98)
"""Pole shrink factors of the calibration sweep (1: the fitted predictors)."""
ORDERS = (32, 64, 128)
"""Predictor orders of the calibration sweep."""
BLOCK = 1024
"""Samples per block: one predictor is fitted per block (64 ms at 16 kHz), as notes change."""
MIN_CONTRAST = 0.1
"""The reference must be tonal: its mu-law round trip's local flatness at least this below white noise's
(rendered piano: about 0.27), else there are no partials to keep and `needed_db` is None."""


def _clip(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if not np.isfinite(x).all() or len(x) < 64 or not np.any(x):
        raise BadInputError("calibration needs at least 64 finite samples that are not all zero")
    return x


def lpc(audio: np.ndarray, order: int) -> np.ndarray:
    """Coefficients a [order] of the linear predictor x_t ~ sum_i a_i x_{t-i} of a Hann-windowed segment, by
    the autocorrelation method (Toeplitz normal equations R a = r; the filter is minimum phase, so stable)."""
    from scipy.linalg import solve_toeplitz

    x = _clip(audio)
    if not 1 <= order < len(x):
        raise BadInputError(f"order must be in [1, {len(x)}), got {order}")
    w = x * np.hanning(len(x))
    r = np.array([np.dot(w[: len(w) - k], w[k:]) for k in range(order + 1)])  # lags 0..order
    r[0] = r[0] * (1 + 1e-9) + 1e-12  # white-noise correction: a positive definite system for any input
    return np.asarray(solve_toeplitz(r[:order], r[1 : order + 1]))


def blockwise(
    audio: np.ndarray, order: int, gamma: float, block: int = BLOCK, seed: int = 0
) -> tuple[float, np.ndarray]:
    """One predictor per block (poles shrunk by gamma): its teacher-forced error over the clip in dB, and
    the same time-varying predictor run on its own output (filter state carried across blocks) driven by
    white noise of each block's residual power, scaled to the clip's RMS."""
    from scipy.signal import lfilter

    x = _clip(audio)
    rng = np.random.default_rng(seed)
    err, state, out = 0.0, np.zeros(order), []
    for start in range(0, len(x), block):
        seg = x[start : start + block]
        a = lpc(seg, order) if len(seg) > order else np.zeros(order)
        poly = np.concatenate([[1.0], -a * gamma ** np.arange(1, order + 1)])
        lo = max(0, start - order)
        residual = lfilter(poly, [1.0], x[lo : start + block])[start - lo :]
        err += float(np.sum(residual**2))
        y, state = lfilter([1.0], poly, rng.standard_normal(len(seg)) * np.sqrt(np.mean(residual**2)), zi=state)
        out.append(y)
    y = np.concatenate(out)
    y = np.clip(y * np.sqrt(np.mean(x**2) / max(float(np.mean(y**2)), 1e-30)), -1, 1)
    return float(10 * np.log10(err / np.sum(x**2) + 1e-30)), y


def calibrate(
    reference: np.ndarray, orders: tuple[int, ...] = ORDERS, gammas: tuple[float, ...] = GAMMAS, seed: int = 0
) -> dict:
    """The prediction-error sweep on held-out audio: per (order, gamma) the teacher-forced error (dB) and the
    local flatness of the free-running output; `needed_db`, the largest error whose output passes the
    tonality line (None when none does), with the line and the figures it comes from."""
    x = _clip(reference)
    ceiling = local_flatness(mulaw_round_trip(x))
    noise = local_flatness(white_noise_like(x, seed))
    line = ceiling + 0.5 * (noise - ceiling)
    rows = []
    for order in orders:
        if order >= min(BLOCK, len(x)) // 2:
            continue
        for gamma in gammas:
            error, out = blockwise(x, order, gamma, seed=seed)
            flat = local_flatness(out)
            rows.append(
                {"order": order, "gamma": gamma, "error_db": error, "local_flatness": flat, "tonal": bool(flat <= line)}
            )
    contrast = noise - ceiling >= MIN_CONTRAST
    passing = [row["error_db"] for row in rows if row["tonal"] and contrast]
    return {
        "line": line,
        "ceiling_local_flatness": ceiling,
        "noise_local_flatness": noise,
        "sweep": rows,
        "needed_db": max(passing) if passing else None,
    }


@torch.no_grad()
def decoder_prediction_error_db(decoder, crops: torch.Tensor, cond: torch.Tensor | None = None) -> float:
    """Teacher-forced prediction error (dB re the signal) of a mu-law WaveNet on crops [N, T] of classes:
    10 log10 sum (x_{t+1} - E[x_{t+1} | x_{<=t}])^2 / sum x_{t+1}^2, amplitudes mu-law decoded."""
    decoder.eval()
    device = decoder.embed.weight.device
    levels = mulaw_decode(torch.arange(decoder.classes), decoder.classes).double().to(device)
    err = power = 0.0
    for i in range(len(crops)):
        x = crops[i : i + 1].to(device)
        c = None if cond is None else cond[i : i + 1].to(device)
        probs = torch.softmax(decoder(x, c)[:, :, :-1].double(), dim=1)
        mean = torch.einsum("bkt,k->bt", probs, levels)
        target = levels[x[:, 1:]]
        err += float(((target - mean) ** 2).sum())
        power += float((target**2).sum())
    return float(10 * np.log10(err / max(power, 1e-30) + 1e-30))
