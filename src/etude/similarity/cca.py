"""CCA, mean CCA, SVCCA and PWCCA between two representations.

- CCA and SVCCA: Raghu, Gilmer, Yosinski, Sohl-Dickstein, "SVCCA: Singular Vector Canonical
  Correlation Analysis for Deep Learning Dynamics and Interpretability", NeurIPS 2017,
  arXiv:1706.05806, Sec. 2.
- PWCCA: Morcos, Raghu, Bengio, "Insights on representational similarity in neural networks with
  canonical correlation", NeurIPS 2018, arXiv:1806.05759, Sec. 2.3 (projection weighting).

Inputs are (datapoints n, neurons p) and (n, q), NumPy or torch on any device; the math runs in
torch, float64 unless ``dtype="float32"``. Each input is first divided by a power of two at or
above its largest entry (exact), so every result is scale-invariant in floating point too. With Z_hat_x, Z_hat_y the whitened bases of
`etude.similarity.whitening`, the canonical correlations are the singular values of

    M = Z_hat_x^T Z_hat_y = Sigma_xx^{-1/2} Sigma_xy Sigma_yy^{-1/2}   (Raghu et al., Sec. 2)

(in the eigenbases of Sigma_xx and Sigma_yy; singular values do not depend on the basis). There
are r = min(rank x, rank y) of them, so duplicated or dead neurons do not add spurious zeros.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from etude.errors import BadInputError
from etude.similarity._validation import Checked, check_matrices, check_real, warn_constant, warn_small_sample
from etude.similarity.lapack import eigh, svdvals
from etude.similarity.whitening import Whitened, whiten

__all__ = ["CCAResult", "PWCCA_VARIANTS", "cca", "mean_cca", "pwcca", "svcca"]

PWCCA_VARIANTS = ("reference", "paper")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def threshold_mean(rho: torch.Tensor, threshold: float | None) -> float:
    """Mean of rho, or (threshold t) of its first k entries, k the fewest with sum rho[:k] >= t sum rho.

    This is google/svcca's ``results["mean"]`` (``sum_threshold``); an empty or all-zero rho gives 0.
    """
    if rho.numel() == 0 or float(rho.sum()) <= 0:
        return 0.0
    if threshold is None:
        return float(rho.mean())
    share = torch.cumsum(rho, 0) / rho.sum()
    k = min(
        int(torch.searchsorted(share, torch.tensor([threshold], dtype=share.dtype, device=share.device))) + 1,
        rho.numel(),
    )
    return float(rho[:k].mean())


def check_threshold(threshold: Any) -> float | None:
    """None, or `threshold` (a Python or NumPy real) as a float in (0, 1]."""
    if threshold is None:
        return None
    try:
        return check_real(threshold, "threshold", 0.0, 1.0, low_open=True)
    except BadInputError:
        raise BadInputError(f"threshold must be None or a number in (0, 1], got {threshold!r}") from None


def check_epsilon(epsilon: Any) -> float:
    """`epsilon` (a Python or NumPy real) as a finite float >= 0."""
    try:
        return check_real(epsilon, "epsilon", 0.0)
    except BadInputError:
        raise BadInputError(f"epsilon must be a finite number >= 0, got {epsilon!r}") from None


def warn_if_constant(a: Whitened, b: Whitened) -> None:
    """ConstantInputWarning for each side without variance (its correlations are empty: similarity 0)."""
    for side, name in ((a, "x"), (b, "y")):
        if side.rank == 0:
            warn_constant(name)


def pair(x: Any, y: Any, dtype: Any) -> tuple[Checked, Checked]:
    """x and y checked, scaled by powers of two and summarized in one pass each (`check_matrix`)."""
    cx, cy = check_matrices([x, y], ["x", "y"], dtype)
    return cx, cy


def cross_matrix(
    a: Whitened, b: Whitened, ka: int | None = None, kb: int | None = None, product: torch.Tensor | None = None
) -> torch.Tensor:
    """M = Z_hat_a[:, :ka]^T Z_hat_b[:, :kb] = T_a^T X_c^T Y_c T_b, from cached bases or the cross-product.

    ``product`` is X_c^T Y_c over all neurons when the caller has it already (`pairwise`).
    """
    ra = a.rank if ka is None else min(ka, a.rank)
    rb = b.rank if kb is None else min(kb, b.rank)
    if ra == 0 or rb == 0:
        return a.transform.new_zeros((ra, rb))
    if a.has_basis and b.has_basis:
        return a.basis(ka).T @ b.basis(kb)
    ta, tb = a.transform[:, :ka], b.transform[:, :kb]
    return ta.T @ a.cross(b, product) @ tb


def correlations(
    a: Whitened, b: Whitened, ka: int | None = None, kb: int | None = None, product: torch.Tensor | None = None
) -> torch.Tensor:
    """The canonical correlations (r,), descending, in [0, 1]."""
    m = cross_matrix(a, b, ka, kb, product)
    if m.numel() == 0:
        return m.new_zeros(0)
    return svdvals(m).clamp(0.0, 1.0)


@dataclass(frozen=True)
class CCAResult:
    """Canonical correlations of x (n, p) and y (n, q) and the canonical weights.

    :ivar rho: canonical correlations (r,), descending, r = min(rank x, rank y).
    :ivar x_kept: indices of x's neurons used (dead neurons and, with epsilon > 0, neurons whose
        variance is below epsilon times the largest are left out).
    :ivar y_kept: the same for y.
    :ivar x_weights: A (p, r): the canonical variables X_c A have identity covariance, and
        cov(X_c A, Y_c B) = diag(rho) (epsilon = 0). Rows of dropped neurons are 0. Signs are
        fixed: the largest-magnitude entry of each column of A is positive.
    :ivar y_weights: B (q, r), paired with A.
    """

    rho: np.ndarray
    x_kept: np.ndarray
    y_kept: np.ndarray
    x_weights: np.ndarray
    y_weights: np.ndarray

    def mean(self, threshold: float | None = None) -> float:
        """The mean canonical correlation; see `mean_cca` for `threshold`."""
        return threshold_mean(torch.from_numpy(self.rho), check_threshold(threshold))


def cca(x: Any, y: Any, epsilon: float = 0.0, *, method: str = "cov", dtype: Any = "float64") -> CCAResult:
    """Canonical correlation analysis of x (n, p) and y (n, q).

    rho_i = sigma_i(Sigma_xx^{-1/2} Sigma_xy Sigma_yy^{-1/2}) (Raghu et al. 2017, Sec. 2).

    :param x: representation (datapoints n, neurons p), NumPy or torch.
    :param y: representation (n, q) of the same datapoints.
    :param epsilon: ridge relative to the largest variance, as google/svcca's ``epsilon``; neurons with
        relative variance below it are removed. Needs ``method="cov"``.
    :param method: "cov" (eigendecomposition of the covariances; fast) or "qr" (QR of the data;
        more accurate for ill-conditioned layers).
    :param dtype: "float64" (default) or "float32".
    :raises BadInputError: on a bad shape, type, value or option (the message names the argument).
    :warns SmallSampleWarning: when n < 5 p or n < 5 q.
    """
    epsilon = check_epsilon(epsilon)
    tx, ty = pair(x, y, dtype)  # x = tx.data 2**ex, y = ty.data 2**ey
    ex, ey = tx.exponent, ty.exponent
    warn_small_sample("x", *tx.shape)
    warn_small_sample("y", *ty.shape)
    a, b = whiten(tx, epsilon, method, eigenbasis=False), whiten(ty, epsilon, method, eigenbasis=False)
    warn_if_constant(a, b)
    r = min(a.rank, b.rank)
    m = cross_matrix(a, b)
    if r == 0:
        rho, ua, vb = m.new_zeros(0), m.new_zeros((a.rank, 0)), m.new_zeros((b.rank, 0))
    else:
        u, s, vh = torch.linalg.svd(m, full_matrices=False)
        rho, ua, vb = s[:r].clamp(0.0, 1.0), u[:, :r], vh[:r].T
    scale = (a.n - 1) ** 0.5
    wa, wb = a.transform @ ua * math.ldexp(scale, -ex), b.transform @ vb * math.ldexp(scale, -ey)  # of x, y
    if r:
        pick = wa.abs().argmax(0)
        sign = torch.sign(wa[pick, torch.arange(r, device=wa.device)])
        sign[sign == 0] = 1
        wa, wb = wa * sign, wb * sign
    return CCAResult(_numpy(rho), _numpy(a.kept), _numpy(b.kept), _numpy(a.full_rows(wa)), _numpy(b.full_rows(wb)))


def mean_cca(
    x: Any, y: Any, epsilon: float = 0.0, threshold: float | None = None, *, method: str = "cov", dtype: Any = "float64"
) -> float:
    """The mean canonical correlation of x (n, p) and y (n, q): (1/r) sum_i rho_i.

    :param threshold: None averages all r correlations; t in (0, 1] averages the first k, the fewest
        whose sum reaches t of the total (google/svcca's ``results["mean"]`` uses t = 0.98).
    :param epsilon, method, dtype: as in `cca`.
    :warns SmallSampleWarning: when n < 5 p or n < 5 q.
    """
    threshold, epsilon = check_threshold(threshold), check_epsilon(epsilon)
    tx, ty = pair(x, y, dtype)
    warn_small_sample("x", *tx.shape)
    warn_small_sample("y", *ty.shape)
    a, b = whiten(tx, epsilon, method, eigenbasis=False), whiten(ty, epsilon, method, eigenbasis=False)
    warn_if_constant(a, b)
    return threshold_mean(correlations(a, b), threshold)


def check_keep(keep: Any) -> float | int:
    """`keep` as an int count >= 1 or a float fraction in (0, 1]; anything else raises BadInputError."""
    if isinstance(keep, numbers.Integral) and not isinstance(keep, bool) and int(keep) >= 1:
        return int(keep)
    if isinstance(keep, numbers.Real) and not isinstance(keep, (bool, numbers.Integral)) and 0 < float(keep) <= 1:
        return float(keep)
    raise BadInputError(
        f"keep must be a fraction in (0, 1] of the singular-value sum or a direction count >= 1, got {keep!r}"
    )


def svd_directions(a: Whitened, keep: float | int) -> int:
    """k: the fewest SVD directions whose singular values sum to `keep` of the total (or `keep` if an int)."""
    if a.rank == 0:
        return 0
    if isinstance(keep, int):
        return min(keep, a.rank)
    assert a.eigvals is not None  # svcca whitens on the covariance route, which keeps the eigenvalues
    sv = a.eigvals.clamp_min(0).sqrt()  # singular values of X_c, up to the common factor sqrt(n - 1)
    share = torch.cumsum(sv, 0) / sv.sum()
    target = torch.tensor([keep * (1 - 1e-12)], dtype=share.dtype, device=share.device)
    return min(int(torch.searchsorted(share, target)) + 1, a.rank)


def svcca(x: Any, y: Any, keep: float | int = 0.99, *, dtype: Any = "float64") -> float:
    """SVCCA: the mean canonical correlation of the top SVD directions of x (n, p) and y (n, q).

    Each side keeps the fewest directions of its centred data whose singular values sum to ``keep``
    of the total (Raghu et al. 2017, Sec. 2.1 step 1), or ``keep`` directions when it is an int;
    then CCA of the reduced data (step 2) and the mean of all its correlations. The SVD comes from
    the covariance eigendecomposition that CCA needs anyway: the reduced data's whitened basis is
    the first k columns of Z_hat.

    :warns SmallSampleWarning: when n < 5 k for the k directions kept on either side.
    """
    keep = check_keep(keep)
    tx, ty = pair(x, y, dtype)
    a, b = whiten(tx), whiten(ty)
    warn_if_constant(a, b)
    ka, kb = svd_directions(a, keep), svd_directions(b, keep)
    warn_small_sample("x (after SVD reduction)", a.n, ka)
    warn_small_sample("y (after SVD reduction)", b.n, kb)
    return threshold_mean(correlations(a, b, ka, kb), None)


def pwcca_weights(a: Whitened, u: torch.Tensor, variant: str) -> torch.Tensor:
    """alpha (r,): normalized sum_j |<h_i, x_j>| over x's kept neurons x_j (Morcos et al., Sec. 2.3).

    ``u`` (r_a, r) holds the left singular vectors of M. "paper": h_i are the canonical variables
    X_c T u_i, orthonormalized (QR, in order). "reference": h_i are google/svcca's ``dirns``,
    X_c V u_i (the singular vectors applied to the un-whitened centred data), orthonormalized by
    QR. Both are computed in the r-dimensional eigenbasis: X_c V = Z0 diag(lambda)^{1/2} sqrt(n-1)
    with Z0 orthonormal, so <h_i, x_j> = (Q_B^T diag(lambda)^{1/2} V^T)_{ij} up to one common factor,
    where Q_B is the Q factor of B = diag(lambda)^{1/2} u ("reference") or
    diag(lambda / (lambda + epsilon m))^{1/2} u ("paper"). No n-sized work is needed.
    """
    lam, vec = a.eigvals, a.eigvecs
    assert lam is not None and vec is not None  # pwcca whitens on the covariance route, in the eigenbasis
    if variant == "reference":
        b = lam.sqrt()[:, None] * u
    else:
        b = (lam / (lam + a.epsilon * a.scale)).sqrt()[:, None] * u
    q, _ = torch.linalg.qr(b)
    alpha = (q.T @ (lam.sqrt()[:, None] * vec.T)).abs().sum(1)
    return alpha / alpha.sum()


def left_singular(m: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The r leading left singular vectors u_i of m (rows x cols) and sigma_i = ||m^T u_i||, in [0, 1].

    One symmetric eigendecomposition of m m^T costs a fraction of an SVD with vectors; sigma_i is
    taken as the norm of m^T u_i rather than the root of an eigenvalue, so it keeps full absolute
    accuracy. Left vectors of nearly equal small singular values are less well determined than
    an SVD's, which moves the PWCCA sum only by (weight change) x (singular-value gap).
    """
    _, vec = eigh(m @ m.T)  # ascending
    u = vec.flip(1)[:, :r]
    return u, (m.T @ u).norm(dim=0).clamp(0.0, 1.0)


def pwcca_pair(a: Whitened, b: Whitened, variant: str, product: torch.Tensor | None = None) -> tuple[float, float]:
    """(pwcca(a, b), pwcca(b, a)) from M: its left vectors weigh a's neurons, its right ones b's."""
    r = min(a.rank, b.rank)
    if r == 0:
        return 0.0, 0.0
    m = cross_matrix(a, b, product=product)
    u, rho_u = left_singular(m, r)
    v, rho_v = left_singular(m.T, r)
    ab = float((pwcca_weights(a, u, variant) * rho_u).sum())
    ba = float((pwcca_weights(b, v, variant) * rho_v).sum())
    return ab, ba


def check_variant(variant: Any) -> None:
    if variant not in PWCCA_VARIANTS:
        raise BadInputError(f"variant must be one of {PWCCA_VARIANTS}, got {variant!r}")


def pwcca(x: Any, y: Any, epsilon: float = 0.0, variant: str = "reference", *, dtype: Any = "float64") -> float:
    """Projection-weighted CCA similarity sum_i alpha_i rho_i, weights from x's neurons.

    alpha_i ∝ sum_j |<h_i, x_j>| (Morcos et al. 2018, Eq. in Sec. 2.3), summing to 1; the distance is
    1 - pwcca(x, y). Not symmetric. Inputs are centred inside, so the result does not depend on SVD
    signs or on constant offsets.

    :param variant: "reference" matches google/svcca's ``compute_pwcca`` on mean-centred inputs
        (h_i: the canonical directions applied to the un-whitened data, Gram-Schmidt in order), and
        is defined where it fails (x wider than y, rank-deficient layers); "paper" uses the
        canonical variables themselves, orthonormalized.
    :param epsilon, dtype: as in `cca`.
    :warns SmallSampleWarning: when n < 5 p or n < 5 q.
    """
    check_variant(variant)
    epsilon = check_epsilon(epsilon)
    tx, ty = pair(x, y, dtype)
    warn_small_sample("x", *tx.shape)
    warn_small_sample("y", *ty.shape)
    a, b = whiten(tx, epsilon), whiten(ty, epsilon)
    warn_if_constant(a, b)
    r = min(a.rank, b.rank)
    if r == 0:
        return 0.0
    u, rho = left_singular(cross_matrix(a, b), r)
    return float((pwcca_weights(a, u, variant) * rho).sum())
