"""WaveNet generation as one compiled loop (numba): every layer, one flat ring buffer, the conditioning,
the output head and sampling from pre-drawn uniforms, for every sample, in one call.

Paine et al. 2016 (arXiv:1611.09482): with a queue of the last d_l inputs per layer, one step costs
O(layers) instead of O(receptive field). Here the queues of all layers are one ring buffer
[B, sum_l d_l, R]; layer l's slot for step t is offset_l + t mod d_l, which holds h_{t-d_l} before it is
overwritten by h_t. Per step and batch row (Eq. 2-3 of WaveNet, arXiv:1609.03499):

    a_l = W0_l h_{t-d_l} + W1_l h_t + b_l + V_l c_{(t+1)//hop},   z_l = tanh(a_l[:R]) sigmoid(a_l[R:]),
    h <- h + Wr_l z_l + br_l,   s = sum_l (Ws_l z_l) + sum_l bs_l,
    logits = W2 relu(W1 relu(s) + b1) + b2,   x_{t+1} = min{i : sum_{j<=i} softmax(logits / T)_j >= u_{t+1}},

with u ~ U[0, 1) drawn ahead (inverse-CDF sampling; one uniform per sample, not one per class).

The torch path (`WaveNet._steps`) calls about 6 kernels per layer and step, each a few microseconds,
which bounds it below real time at 16 kHz; this loop has no per-call overhead. numba is an optional
extra (``pip install etude[fast]``); without it `available()` is False and generation uses torch.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

__all__ = ["available", "run_steps", "notice_once", "inverse_cdf_py", "tanh", "NOTICE_SHOWN"]

numba: Any
try:  # optional extra `fast`
    import numba
except ImportError:  # pragma: no cover - exercised only without the extra
    numba = None

NOTICE_SHOWN = False
"""Whether `notice_once` has printed its line in this process."""


def available() -> bool:
    """True when numba is installed (the compiled generation loop can run)."""
    return numba is not None


def notice_once() -> None:
    """Print, once per process, that generation falls back to the slower torch loop."""
    global NOTICE_SHOWN
    if not NOTICE_SHOWN:
        NOTICE_SHOWN = True
        print(
            "note: numba is not installed, so WaveNet generation uses the slower torch loop "
            "(pip install 'etude[fast]' for the compiled one)",
            file=sys.stderr,
        )


def _tanh_py(x: Any) -> Any:
    """tanh(x) as a rational function p(x) / q(x) of degrees 13 and 6 on [-7.905, 7.905] (clamped outside),
    vectorizable (no libm call); the minimax coefficients of Eigen's float tanh (MathFunctionsImpl.h,
    `generic_fast_tanh_float`), absolute error below 1e-6 in float32 (tested against numpy)."""
    x = min(max(x, np.float32(-7.90531110763549805)), np.float32(7.90531110763549805))
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return x * p / q


def inverse_cdf_py(logits: np.ndarray, temperature: float, u: float, cum: np.ndarray) -> int:
    """The first class i whose cumulative softmax(logits / temperature) mass reaches u (inverse-CDF sampling
    from one uniform u in [0, 1)), in float64: c_i = sum_{j<=i} exp(l_j / T - max_k l_k / T), i = #{c_i < u c_K}."""
    classes = logits.shape[0]
    top = -np.inf
    for o in range(classes):
        top = max(top, np.float64(logits[o]) / temperature)
    total = 0.0
    for o in range(classes):
        total += math.exp(np.float64(logits[o]) / temperature - top)
        cum[o] = total
    target = u * total
    for o in range(classes):
        if cum[o] >= target:
            return o
    return classes - 1


def _steps_py(
    table: np.ndarray,
    w_in: np.ndarray,
    b_in: np.ndarray,
    w_res: np.ndarray,
    b_res: np.ndarray,
    w_skip: np.ndarray,
    b_skip: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    dilations: np.ndarray,
    offsets: np.ndarray,
    ring: np.ndarray,
    cond: np.ndarray,
    hop: int,
    x: np.ndarray,
    start: int,
    stop: int,
    noise: np.ndarray,
    noise_start: int,
    temperature: float,
    sample: bool,
    logits_out: np.ndarray,
) -> None:
    """Steps t in [start, stop): read x[:, t], write logits_out[:, t] (when it has rows) and, when sampling,
    x[:, t + 1] = the inverse CDF of softmax(logits / temperature) at the uniform noise[t + 1 - noise_start, b].
    Weights are [in, out]. One function of about 100 lines, not split into helpers: it is the body numba
    compiles into one loop over the samples (the point of the module), read top to bottom as the equations
    above; helpers would be calls inside that per-sample loop, or left to numba's inlining."""
    batch = x.shape[0]
    layers = dilations.shape[0]
    r = table.shape[1]
    skip_ch = w1.shape[0]
    classes = w2.shape[1]
    blocks = cond.shape[1]
    keep = logits_out.shape[1] > 0
    h = np.empty((batch, r), dtype=np.float32)
    a = np.empty(2 * r, dtype=np.float32)
    z = np.empty(r, dtype=np.float32)
    s = np.empty((batch, skip_ch), dtype=np.float32)
    u = np.empty(skip_ch, dtype=np.float32)
    out = np.empty(classes, dtype=np.float32)
    cum = np.empty(classes, dtype=np.float64)
    for t in range(start, stop):
        block = min((t + 1) // hop, blocks - 1)
        for b in range(batch):
            current = x[b, t]
            for i in range(r):
                h[b, i] = table[current, i]
            for o in range(skip_ch):
                s[b, o] = b_skip[o]
        for layer in range(layers):  # every row of the batch through one layer: its weights stay in cache
            slot = offsets[layer] + t % dilations[layer]
            for b in range(batch):
                for o in range(2 * r):
                    a[o] = b_in[layer, o]
                if blocks > 0:
                    for o in range(2 * r):
                        a[o] += cond[b, block, layer, o]
                for i in range(r):  # the past tap: h_{t-d}, zero before the start
                    v = ring[b, slot, i]
                    for o in range(2 * r):
                        a[o] += v * w_in[layer, i, o]
                for i in range(r):  # the present tap, which then takes its place in the ring
                    v = h[b, i]
                    for o in range(2 * r):
                        a[o] += v * w_in[layer, r + i, o]
                    ring[b, slot, i] = v
                for i in range(r):  # sigmoid(g) = (1 + tanh(g / 2)) / 2
                    z[i] = _tanh(a[i]) * (np.float32(0.5) + np.float32(0.5) * _tanh(np.float32(0.5) * a[r + i]))
                for i in range(r):
                    v = z[i]
                    for o in range(skip_ch):
                        s[b, o] += v * w_skip[layer, i, o]
                if layer + 1 < layers:  # the last layer's residual output feeds nothing
                    for o in range(r):
                        h[b, o] += b_res[layer, o]
                    for i in range(r):
                        v = z[i]
                        for o in range(r):
                            h[b, o] += v * w_res[layer, i, o]
        for b in range(batch):
            for o in range(skip_ch):
                u[o] = b1[o]
            for i in range(skip_ch):
                v = max(s[b, i], np.float32(0.0))
                for o in range(skip_ch):
                    u[o] += v * w1[i, o]
            for o in range(classes):
                out[o] = b2[o]
            for i in range(skip_ch):
                v = max(u[i], np.float32(0.0))
                for o in range(classes):
                    out[o] += v * w2[i, o]
            if keep:
                for o in range(classes):
                    logits_out[b, t, o] = out[o]
            if sample and t + 1 < x.shape[1]:
                x[b, t + 1] = _inverse_cdf(out, temperature, noise[t + 1 - noise_start, b], cum)


_compiled: Any = None
_tanh: Any = _tanh_py
_inverse_cdf: Any = inverse_cdf_py


def _kernel() -> Any:
    """The compiled step loop (compiled on first use; numba caches it on disk)."""
    global _compiled, _tanh, _inverse_cdf
    if _compiled is None:
        assert numba is not None
        _tanh = numba.njit(cache=True, nogil=True, fastmath=True, inline="always")(_tanh_py)
        # no fastmath here: the float64 sums must round as the torch path's do
        _inverse_cdf = numba.njit(cache=True, nogil=True)(inverse_cdf_py)
        _compiled = numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")(_steps_py)
    return _compiled


def tanh(values: np.ndarray) -> np.ndarray:
    """The loop's rational tanh applied to every value (float32), compiled when numba is installed."""
    if numba is not None:
        _kernel()
    return np.array([_tanh(np.float32(v)) for v in np.asarray(values, dtype=np.float32).reshape(-1)], dtype=np.float32)


def run_steps(weights: dict[str, np.ndarray], state: dict[str, Any], start: int, stop: int, **kw: Any) -> None:
    """Run steps [start, stop) of the compiled loop on `weights` (see `WaveNet.compiled_weights`) and `state`
    (ring, cond, hop, x; numpy arrays updated in place); keyword arguments: noise, noise_start,
    temperature, sample, logits_out."""
    empty = np.zeros((0, 0, 0), dtype=np.float32)
    no_noise = np.zeros((0, 0), dtype=np.float64)
    _kernel()(
        weights["table"],
        weights["w_in"],
        weights["b_in"],
        weights["w_res"],
        weights["b_res"],
        weights["w_skip"],
        weights["b_skip"],
        weights["w1"],
        weights["b1"],
        weights["w2"],
        weights["b2"],
        weights["dilations"],
        weights["offsets"],
        state["ring"],
        state["cond"],
        int(state["hop"]),
        state["x"],
        int(start),
        int(stop),
        kw.get("noise", no_noise),
        int(kw.get("noise_start", 0)),
        float(kw.get("temperature", 1.0)),
        bool(kw.get("sample", False)),
        kw.get("logits_out", empty),
    )
