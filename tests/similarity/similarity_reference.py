"""A straightforward NumPy float64 implementation of the CCA formulas as google/svcca's cca_core applies them.

Written from the formulas (the SVCCA and PWCCA papers), not copied: the
covariance of the stacked activations, scaling by the largest variance, removal of neurons
below epsilon, pinv of each covariance block followed by a symmetric matrix square root, a full
SVD, and for PWCCA a QR of the canonical directions applied to the (centred) data. Layout here
is ours, (datapoints n, neurons p). Used by the tests as an oracle and by
benchmarks/similarity_speed.py as the baseline.
"""

from __future__ import annotations

import numpy as np


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root through eigh; a tiny negative eigenvalue gives NaN, as in the reference."""
    w, v = np.linalg.eigh(matrix)
    with np.errstate(invalid="ignore"):
        return (v * np.sqrt(w)) @ v.T


def reference_cca(x: np.ndarray, y: np.ndarray, epsilon: float = 0.0):
    """(u, rho, x_kept, y_kept): left singular vectors (p_kept, p_kept) and all min(p, q) correlations."""
    p = x.shape[1]
    cov = np.cov(x.T, y.T)  # (p + q, p + q), divides by n - 1
    sxx, sxy, syy = cov[:p, :p], cov[:p, p:], cov[p:, p:]
    xmax, ymax = np.abs(sxx).max(), np.abs(syy).max()
    sxx, syy, sxy = sxx / xmax, syy / ymax, sxy / np.sqrt(xmax * ymax)
    xk, yk = np.diag(sxx) >= epsilon, np.diag(syy) >= epsilon
    sxx, syy, sxy = sxx[xk][:, xk], syy[yk][:, yk], sxy[xk][:, yk]
    inv_xx = _sqrt_psd(np.linalg.pinv(sxx + epsilon * np.eye(len(sxx))))
    inv_yy = _sqrt_psd(np.linalg.pinv(syy + epsilon * np.eye(len(syy))))
    u, s, _ = np.linalg.svd(inv_xx @ sxy @ inv_yy)  # full SVD, as the reference
    return u, np.abs(s), xk, yk


def reference_mean(rho: np.ndarray, threshold: float = 0.98) -> float:
    """Mean of the first k correlations, k the fewest whose sum reaches `threshold` of the total."""
    share = np.cumsum(rho) / rho.sum()
    k = int(np.argmax(share >= threshold)) + 1
    return float(np.mean(rho[:k]))


def reference_svcca(x: np.ndarray, y: np.ndarray, keep: float = 0.99) -> float:
    """SVD of each centred side, the fewest directions reaching `keep` of the singular-value sum, mean CCA."""
    reduced = []
    for a in (x, y):
        ac = a - a.mean(0)
        u, s, _ = np.linalg.svd(ac, full_matrices=False)
        k = int(np.argmax(np.cumsum(s) / s.sum() >= keep)) + 1
        reduced.append(u[:, :k] * s[:k])
    _, rho, _, _ = reference_cca(*reduced)
    return float(rho.mean())


def reference_pwcca(x: np.ndarray, y: np.ndarray, epsilon: float = 0.0) -> float:
    """PWCCA with weights from x, on x centred first.

    For p <= q this is the reference's computation. For p > q (where the reference fails) it keeps
    the first r = q directions, which is etude's definition: Gram-Schmidt runs in order, so the
    first r columns of the QR are those of the full one; the weights are normalized over those r.
    """
    xc = x - x.mean(0)
    u, rho, xk, _ = reference_cca(xc, y, epsilon)
    dirns = xc[:, xk] @ u[:, : len(rho)]  # (n, r): the canonical directions applied to the centred data
    basis, _ = np.linalg.qr(dirns)
    weights = np.abs(basis.T @ xc[:, xk]).sum(axis=1)
    weights = weights / weights.sum()
    return float(np.sum(weights * rho))


def make_layers(seed: int, n: int = 400, widths: tuple[int, ...] = (12, 16), latent: int = 6,
                noise: float = 0.5) -> list[np.ndarray]:
    """Representations (n, w) of one shared latent through different random nonlinear maps, plus noise.

    The test suite's one data factory: related, full-rank, moderately conditioned layers.
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, latent))
    out = []
    for i, width in enumerate(widths):
        pre = z @ rng.standard_normal((latent, width)) + noise * rng.standard_normal((n, width))
        out.append(np.tanh(pre) if i % 2 == 0 else np.maximum(pre, 0.0) + 0.1 * pre)
    return out


def reference_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA through centred n x n Gram matrices: <HKH, HLH> / (||HKH|| ||HLH||)."""
    n = len(x)
    h = np.eye(n) - 1.0 / n
    k, l = h @ x @ x.T @ h, h @ y @ y.T @ h
    return float(np.sum(k * l) / np.sqrt(np.sum(k * k) * np.sum(l * l)))


def reference_cka_debiased(x: np.ndarray, y: np.ndarray) -> float:
    """Debiased linear CKA: Song et al.'s unbiased HSIC from Gram matrices with zeroed diagonals."""

    def hsic(k: np.ndarray, l: np.ndarray) -> float:
        n = len(k)
        k, l = k.copy(), l.copy()
        np.fill_diagonal(k, 0.0)
        np.fill_diagonal(l, 0.0)
        one = np.ones(n)
        return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
                - 2.0 / (n - 2) * (one @ k @ l @ one)) / (n * (n - 3))

    k, l = x @ x.T, y @ y.T  # uncentred: the unbiased estimator needs no centring
    return float(hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l)))
