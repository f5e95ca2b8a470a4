"""Whitening one representation, once: the per-matrix work every CCA-family comparison shares.

Raghu et al., "SVCCA", NeurIPS 2017 (arXiv:1706.05806), Sec. 2; Morcos, Raghu, Bengio, "Insights on
representational similarity in neural networks with canonical correlation", NeurIPS 2018
(arXiv:1806.05759), Sec. 2.1.

Notation: X (n, p) holds one representation, X_c its mean-centred columns, and
Sigma_xx = X_c^T X_c / (n - 1). CCA needs Sigma_xx^{-1/2}; we get it from one symmetric
eigendecomposition Sigma_xx = V diag(lambda) V^T and keep the r directions with
lambda_i > 10 p eps(dtype) lambda_max. Directions below that (dead, duplicated or linearly
dependent neurons, n <= p) carry no variance and are dropped instead of being inverted, so the
result stays finite where pinv-then-sqrt (google/svcca's cca_core) takes the root of a tiny
negative eigenvalue and returns NaN.

`epsilon` follows google/svcca: covariances are scaled by m = max|Sigma_xx|, neurons with scaled
variance below epsilon are removed, and epsilon is added to the scaled diagonal; here that is
lambda_i -> lambda_i + epsilon m.

Two routes give the orthonormal basis Z_hat (n, r) of the centred data's column space
(Z_hat^T Z_hat = I when epsilon = 0):
- "cov": Z_hat = X_c T with T = V (lambda + epsilon m)^{-1/2} / sqrt(n - 1); fast for n >> p.
  Sigma_xx comes from `etude.similarity.gram` (one BLAS syrk, centring folded in where exact
  enough), the neuron variances from its diagonal; Z_hat itself is formed only on request,
  comparisons use X_c^T Y_c.
  When the caller needs no eigenbasis (CCA's correlations need any whitening, SVCCA and PWCCA
  need V and lambda), epsilon = 0 and Sigma_xx is well conditioned, T = L^{-T} / sqrt(n - 1)
  from the Cholesky factor Sigma_xx = L L^T instead: a fraction of the eigendecomposition's
  cost. "Well conditioned" is certified, not guessed: ||L^{-1}||_F^2 tr(Sigma_xx) >= cond(Sigma_xx),
  and the Cholesky route is taken only when that bound is below 1 / (10 p eps), so the
  eigendecomposition would have kept every direction too.
- "qr": X_c = Q R (thin QR), Z_hat = Q, T = R^{-1}; squares no condition number. When R shows
  rank deficiency it falls back to the SVD X_c = U S W^T, Z_hat = U_r, T = W_r S_r^{-1}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from etude.errors import BadInputError
from etude.similarity._validation import Checked, check_matrix
from etude.similarity.gram import cross, gram
from etude.similarity.lapack import eigh

__all__ = ["METHODS", "Whitened", "whiten"]

METHODS = ("cov", "qr")
RANK_FACTOR = 10.0
"""A direction is kept when its eigenvalue exceeds RANK_FACTOR * p * eps(dtype) * lambda_max (cov route)."""


@dataclass
class Whitened:
    """One centred, whitened representation.

    :ivar source: the checked representation (data, means, dead neurons, cached Gram).
    :ivar kept: indices of the kept neurons among the p inputs (long, ascending).
    :ivar transform: T (p_kept, r) with Z_hat = X_c T.
    :ivar eigvals: covariance eigenvalues lambda of the kept directions, (r,) descending
        (cov route; for qr, the squared singular values / (n - 1) in the SVD fallback; None for
        the Cholesky and plain QR whitenings).
    :ivar eigvecs: V (p_kept, r), the matching eigenvectors (cov route with eigenbasis, else None).
    :ivar scale: m = max|Sigma_xx|, the scale epsilon is relative to.
    """

    source: Checked
    kept: torch.Tensor
    transform: torch.Tensor
    eigvals: torch.Tensor | None
    eigvecs: torch.Tensor | None
    n: int
    p: int
    epsilon: float
    scale: float
    method: str
    _basis: torch.Tensor | None = None

    @property
    def rank(self) -> int:
        """r, the number of directions kept."""
        return self.transform.shape[1]

    @property
    def centred(self) -> torch.Tensor:
        """X_c, the kept neurons with column means removed, (n, p_kept) (formed on first use)."""
        xc = self.source.centred()
        return xc if len(self.kept) == self.p else xc[:, self.kept]

    def cross(self, other: Whitened, product: torch.Tensor | None = None) -> torch.Tensor:
        """X_c^T Y_c over both sides' kept neurons (p_kept, q_kept); ``product`` is the full one if known."""
        full = cross(self.source, other.source) if product is None else product
        if len(self.kept) < self.p:
            full = full[self.kept]
        return full if len(other.kept) == other.p else full[:, other.kept]

    @property
    def has_basis(self) -> bool:
        """Whether Z_hat is formed already (the QR and SVD routes hand it over; ``basis`` caches it)."""
        return self._basis is not None

    def basis(self, k: int | None = None) -> torch.Tensor:
        """Z_hat[:, :k] (n, k): the first k whitened directions (cached)."""
        if self._basis is None:
            self._basis = self.centred @ self.transform
        return self._basis if k is None else self._basis[:, :k]

    def full_rows(self, matrix: torch.Tensor) -> torch.Tensor:
        """Rows indexed by kept neurons (p_kept, k) scattered into (p, k), zeros for dropped neurons."""
        out = matrix.new_zeros((self.p, matrix.shape[1]))
        out[self.kept] = matrix
        return out


def _kept_neurons(x: Checked, var: torch.Tensor, epsilon: float) -> tuple[torch.Tensor, float]:
    """Indices of neurons that vary (and whose variance / m >= epsilon), and m = max variance."""
    alive = x.alive
    scale = float(var[alive].max()) if bool(alive.any()) else 0.0
    if epsilon > 0 and scale > 0:
        alive = alive & (var >= epsilon * scale)
    return torch.nonzero(alive).flatten(), scale


def _cholesky_transform(cov: torch.Tensor, n: int) -> torch.Tensor | None:
    """L^{-T} / sqrt(n - 1) when Sigma = L L^T is certifiably well conditioned, else None."""
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0:
        return None
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    inv = torch.linalg.solve_triangular(chol, eye, upper=False)  # L^{-1}
    bound = float(inv.square().sum() * cov.diagonal().sum())  # sum(1/lambda) * sum(lambda) >= cond
    if not bound * RANK_FACTOR * cov.shape[0] * torch.finfo(cov.dtype).eps < 1:
        return None
    return inv.T / (n - 1) ** 0.5


def whiten(x: torch.Tensor | Checked, epsilon: float = 0.0, method: str = "cov", eigenbasis: bool = True) -> Whitened:
    """Centre and whiten x (n, p) once; see the module docstring for the two routes.

    :param x: a checked representation (`etude.similarity._validation.check_matrix`) or a float tensor (n, p).
    :param epsilon: relative ridge added to the covariance (google/svcca's epsilon); cov route only.
    :param method: "cov" or "qr".
    :param eigenbasis: the caller needs V and lambda (SVCCA, PWCCA); False lets the cov route use
        the Cholesky factor when that is certifiably safe.
    """
    if method not in METHODS:
        raise BadInputError(f"method must be one of {METHODS}, got {method!r}")
    if not (isinstance(epsilon, (int, float)) and not isinstance(epsilon, bool) and 0 <= epsilon < math.inf):
        raise BadInputError(f"epsilon must be a finite number >= 0, got {epsilon!r}")
    if epsilon > 0 and method != "cov":
        raise BadInputError(f"epsilon > 0 needs method='cov' (the QR route has no ridge), got method={method!r}")
    src = x if isinstance(x, Checked) else check_matrix(x, "x", x.dtype, x.device, min_rows=1, exponent=0)
    n, p = src.shape
    if method == "cov":
        g = gram(src)
        var = g.diagonal() / max(n - 1, 1)
    else:
        var = src.centred().square().sum(0) / max(n - 1, 1)
    kept, scale = _kept_neurons(src, var, epsilon)
    data = src.data
    empty = data.new_zeros((len(kept), 0))
    if len(kept) == 0:
        return Whitened(src, kept, empty, data.new_zeros(0), empty, n, p, float(epsilon), scale, method)
    eps = torch.finfo(data.dtype).eps
    if method == "cov":
        cov = (g if len(kept) == p else g[kept][:, kept]) / (n - 1)
        if not eigenbasis and epsilon == 0:
            transform = _cholesky_transform(cov, n)
            if transform is not None:
                return Whitened(src, kept, transform, None, None, n, p, 0.0, scale, method)
        lam, vec = eigh(cov)  # ascending
        lam, vec = lam.flip(0), vec.flip(1)
        keep = lam > RANK_FACTOR * len(kept) * eps * lam[0].clamp_min(0)
        lam, vec = lam[keep], vec[:, keep]
        transform = vec * ((lam + epsilon * scale) * (n - 1)).rsqrt()
        return Whitened(src, kept, transform, lam, vec, n, p, float(epsilon), scale, method)
    xc = src.centred() if len(kept) == p else src.centred()[:, kept]
    q, r = torch.linalg.qr(xc)
    diag = r.diagonal().abs()
    if xc.shape[1] < n and bool(diag.min() > RANK_FACTOR * max(n, p) * eps * diag.max()):
        eye = torch.eye(r.shape[0], dtype=r.dtype, device=r.device)
        transform = torch.linalg.solve_triangular(r, eye, upper=True)
        return Whitened(src, kept, transform, None, None, n, p, 0.0, scale, method, _basis=q)
    u, s, wt = torch.linalg.svd(xc, full_matrices=False)
    keep = s > RANK_FACTOR * max(n, p) * eps * s[0]
    u, s, w = u[:, keep], s[keep], wt[keep].T
    return Whitened(src, kept, w / s, s.square() / (n - 1), None, n, p, 0.0, scale, method, _basis=u)
