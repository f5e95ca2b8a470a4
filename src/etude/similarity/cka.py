"""Linear CKA, biased and debiased, in one pass or streamed over minibatches.

Kornblith, Norouzi, Lee, Hinton, "Similarity of Neural Network Representations Revisited",
ICML 2019, arXiv:1905.00414, Sec. 3 (Eq. 5 for linear CKA). The debiased form replaces HSIC by
the unbiased estimator of Song et al. 2012 (JMLR 13, Eq. 5), as in Nguyen, Raghu, Kornblith,
"Do Wide and Deep Networks Learn the Same Things?", ICLR 2021, arXiv:2010.15327, Sec. 3.

With centred X (n, p), Y (n, q), K = X X^T, L = Y Y^T, k_i = ||x_i||^2, l_i = ||y_i||^2:

    CKA = <K, L> / (||K||_F ||L||_F),   <K, L> = ||Y^T X||_F^2                      (Eq. 5)
    HSIC_1(K, L) ∝ <K, L> - n/(n-2) sum_i k_i l_i + (sum_i k_i)(sum_i l_i) / ((n-1)(n-2))

(the unbiased estimator written for centred features; its factor 1/(n(n-3)) cancels in the ratio).

`MinibatchCKA` departs from Nguyen et al.: they average per-batch unbiased HSICs, an estimator
whose value depends on the batch size. Here the batches add up exact sufficient statistics
(sums, X^T X, Y^T Y, Y^T X and a few row-norm moments, shifted by the first batch's mean for
accuracy), so the streamed value equals `linear_cka` on all the data at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from etude.errors import BadInputError
from etude.similarity._validation import (
    Checked,
    _as_tensor,
    as_scaled_matrix,
    as_scaled_pair,
    check_matrices,
    check_matrix,
    resolve_dtype,
    warn_constant,
)
from etude.similarity.gram import JOINT_LIMIT, centred_joint_gram, checked_by_gram, cross, gram

__all__ = ["MinibatchCKA", "linear_cka"]


def _hsic(cross: float, sum_k: float, sum_l: float, sum_kl: float, n: int, debiased: bool) -> float:
    """<K, L> of centred Grams, or the unbiased HSIC_1 up to 1/(n(n-3))."""
    if not debiased:
        return cross
    return cross - n / (n - 2) * sum_kl + sum_k * sum_l / ((n - 1) * (n - 2))


def cka_from_moments(
    cross: float,
    self_x: float,
    self_y: float,
    sum_k: float,
    sum_l: float,
    sum_kl: float,
    sum_kk: float,
    sum_ll: float,
    n: int,
    debiased: bool,
    names: tuple[str, str] = ("x", "y"),
) -> float:
    """CKA from the centred quantities <K,L>, ||K||^2, ||L||^2 and the row-norm moments; 0 for a constant side."""
    num = _hsic(cross, sum_k, sum_l, sum_kl, n, debiased)
    dx = _hsic(self_x, sum_k, sum_k, sum_kk, n, debiased)
    dy = _hsic(self_y, sum_l, sum_l, sum_ll, n, debiased)
    if not (dx > 0 and dy > 0):
        for d, name in zip((dx, dy), names):
            if not d > 0:
                warn_constant(name)
        return 0.0
    return num / (dx**0.5 * dy**0.5)


def gram_inner(xc: torch.Tensor, yc: torch.Tensor) -> float:
    """<X X^T, Y Y^T> = ||Y^T X||_F^2 of centred data, through whichever of the two products is cheaper."""
    n, p = xc.shape
    q = yc.shape[1]
    if n * (p + q + n) < p * q:
        return float(((xc @ xc.T) * (yc @ yc.T)).sum())
    return float((xc.T @ yc).square().sum())


def wide(x: Checked, y: Checked) -> bool:
    """Whether the n x n Grams X X^T, Y Y^T are cheaper than the p x q cross-product (few, wide datapoints)."""
    n, p = x.shape
    q = y.shape[1]
    return n * (p + q + n) < p * q


Moments = tuple[float, float, float, float, float, float, float, float]


def moments(x: Checked, y: Checked, debiased: bool, product: torch.Tensor | None = None) -> Moments:
    """(<K, L>, ||K||^2, ||L||^2, sum k, sum l, sum k l, sum k k, sum l l) of the centred x and y.

    For n > p, q they come from X_c^T X_c, Y_c^T Y_c and X_c^T Y_c (`etude.similarity.gram`: one
    syrk per side, one gemm per pair, no centred copy where the mean is small); sum k = tr(X_c^T X_c).
    The row norms k_i, l_i (debiased only) need the centred data.
    """
    if x is y:
        g = gram(x)
        inner = float(g.square().sum())
        self_x = self_y = inner
        sum_k = sum_l = float(g.diagonal().sum())
    elif wide(x, y):
        xc, yc = x.centred(), y.centred()
        inner, self_x, self_y = gram_inner(xc, yc), gram_inner(xc, xc), gram_inner(yc, yc)
        sum_k, sum_l = float(xc.square().sum()), float(yc.square().sum())
    else:
        gx, gy = gram(x), gram(y)
        c = cross(x, y) if product is None else product
        inner, self_x, self_y = float(c.square().sum()), float(gx.square().sum()), float(gy.square().sum())
        sum_k, sum_l = float(gx.diagonal().sum()), float(gy.diagonal().sum())
    if not debiased:
        return inner, self_x, self_y, sum_k, sum_l, 0.0, 0.0, 0.0
    k, l = _row_norms(x), _row_norms(y)
    return inner, self_x, self_y, sum_k, sum_l, float(k @ l), float(k @ k), float(l @ l)


def _row_norms(x: Checked) -> torch.Tensor:
    """k_i = ||x_i - mu||^2, centred twice (the corrected two-pass algorithm): the residual mean of X_c,
    the rounding of mu at the data's offset, enters k_i at first order and is taken out."""
    centred = x.centred()
    return (centred - centred.mean(0)).square().sum(1)


def check_debiased(debiased: Any, n: int | None = None) -> None:
    if not isinstance(debiased, (bool, np.bool_)):
        raise BadInputError(f"debiased must be True or False, got {debiased!r}")
    if debiased and n is not None and n < 4:
        raise BadInputError(f"debiased CKA needs at least 4 datapoints, got n={n}")


def linear_cka(x: Any, y: Any, debiased: bool = False, *, dtype: Any = "float64") -> float:
    """Linear CKA of x (n, p) and y (n, q): ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F) (Eq. 5).

    Invariant to orthogonal transforms and isotropic scaling of either side, not to general
    invertible maps; needs no n > p. A side with no variance gives 0.

    :param debiased: use the unbiased HSIC estimator (Song et al. 2012); needs n >= 4.
    :param dtype: "float64" (default) or "float32".
    """
    pair = _fast_inputs(x, y, dtype, debiased)
    checked = None
    if pair is not None:  # small pairs, or large ones with an offset: one syrk of the shifted pair
        (n, p), q = pair[0].shape, pair[1].shape[1]
        checked = _checked_by_grams(*pair) if n * (p + q + 1) > JOINT_LIMIT else None
        fast = _joint_moments(*pair, debiased) if checked is None else None
        if fast is not None:
            return cka_from_moments(*fast, n, debiased)
    # powers of two: exact, no overflow or underflow below
    tx, ty = checked if checked is not None else check_matrices([x, y], ["x", "y"], dtype)
    n = tx.shape[0]
    check_debiased(debiased, n)
    return cka_from_moments(*moments(tx, ty, debiased), n, debiased)


def _fast_inputs(x: Any, y: Any, dtype: Any, debiased: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """x and y as CPU float64 tensors of equal n with valid options where CKA forms the p x p Grams, else None.

    None sends the call down the general path, which gives every error in its usual order.
    """
    try:
        if resolve_dtype(dtype) != torch.float64 or not isinstance(debiased, (bool, np.bool_)):
            return None
        if not all(
            isinstance(v, np.ndarray) or (isinstance(v, torch.Tensor) and v.device.type == "cpu") for v in (x, y)
        ):
            return None
        ax, ay = _as_tensor(x, "x", 2, None), _as_tensor(y, "y", 2, None)
    except BadInputError:
        return None
    (n, p), (m, q) = ax.shape, ay.shape
    if n != m or (debiased and n < 4) or n * (p + q + n) < p * q or ax.dtype != torch.float64:
        return None
    return ax, ay


def _joint_moments(ax: torch.Tensor, ay: torch.Tensor, debiased: bool) -> Moments | None:
    """`moments` of `_fast_inputs`' x and y from `centred_joint_gram` (one syrk of the shifted pair), or None.

    With U the centred joint Gram's upper triangle, ||X_c^T X_c||_F^2 = 2 ||U_xx||^2 - ||diag U_xx||^2
    (the block is symmetric), <K, L> = ||U_xy||^2, sum k = tr(U_xx); the row norms (debiased) need the
    centred data, one more pass.
    """
    p = ax.shape[1]
    if not (ax.is_contiguous() and ay.is_contiguous()):
        return None
    joint = centred_joint_gram(ax.numpy(), ay.numpy())
    if joint is None:
        return None
    upper, shifted, mean = joint
    diagonal = upper.diagonal()
    dx, dy = diagonal[:p], diagonal[p:]
    self_x = 2 * _squares(upper[:p, :p]) - float(dx @ dx)  # the strict lower triangle is 0
    self_y = 2 * _squares(upper[p:, p:]) - float(dy @ dy)
    inner = _squares(upper[:p, p:])
    sum_k, sum_l = float(dx.sum()), float(dy.sum())
    if not debiased:
        return inner, self_x, self_y, sum_k, sum_l, 0.0, 0.0, 0.0
    centred = shifted - mean  # x - s is exact near s: no mean rounded at the offset's scale
    k, l = np.square(centred[:, :p]).sum(1), np.square(centred[:, p:]).sum(1)
    return inner, self_x, self_y, sum_k, sum_l, float(k @ l), float(k @ k), float(l @ l)


def _squares(block: np.ndarray) -> float:
    return float(np.einsum("ij,ij->", block, block))


def _checked_by_grams(ax: torch.Tensor, ay: torch.Tensor) -> list[Checked] | None:
    """`_fast_inputs`' x and y as `check_matrices` would check them, through `checked_by_gram` (no min/max
    pass) where it decides; None sends the call down the general path. y alone falls back to
    `check_matrix` when x was decided (x is then known finite and unscaled).
    """
    cx = checked_by_gram(ax)
    if cx is None:
        return None
    cy = checked_by_gram(ay)
    return [cx, cy if cy is not None else check_matrix(ay, "y", torch.float64)]


class MinibatchCKA:
    """Linear CKA accumulated over minibatches; equals `linear_cka` on the concatenated data.

    >>> cka = MinibatchCKA()
    >>> for xb, yb in batches:          # xb (b, p), yb (b, q): the same datapoints
    ...     cka.update(xb, yb)
    >>> cka.value()

    Memory: O(p^2 + q^2 + p q) per pair of layers, whatever the number of datapoints.

    :param debiased: as in `linear_cka`.
    :param dtype: "float64" (default) or "float32" for the accumulators.
    """

    def __init__(self, debiased: bool = False, *, dtype: Any = "float64") -> None:
        check_debiased(debiased)
        self.debiased = debiased
        self.dtype = resolve_dtype(dtype)
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen."""
        self.n = 0
        self._exponents: tuple[int, int] = (0, 0)
        self._shift: tuple[torch.Tensor, torch.Tensor] | None = None
        self._stats: dict[str, torch.Tensor] = {}

    def update(self, x: Any, y: Any) -> MinibatchCKA:
        """Add a batch: x (b, p) and y (b, q) for the same b datapoints (b >= 1)."""
        device = self._shift[0].device if self._shift is not None else None
        if device is not None:  # later batches: the first batch's powers of two (exact; no overflow)
            tx, _ = as_scaled_matrix(x, "x", self.dtype, device, min_rows=1, exponent=self._exponents[0])
            ty, _ = as_scaled_matrix(y, "y", self.dtype, device, min_rows=1, exponent=self._exponents[1])
            if tx.shape[0] != ty.shape[0]:
                raise BadInputError(
                    f"x and y must have the same number of datapoints: x has shape "
                    f"{tuple(tx.shape)}, y has shape {tuple(ty.shape)}"
                )
        else:
            tx, ty, ex, ey = as_scaled_pair(x, y, self.dtype, min_rows=1)
            self._exponents = (ex, ey)
        if self._shift is None:
            self._shift = (tx.mean(0), ty.mean(0))
        else:
            for t, c, name in ((tx, self._shift[0], "x"), (ty, self._shift[1], "y")):
                if t.shape[1] != c.shape[0]:
                    raise BadInputError(
                        f"{name} must keep its {c.shape[0]} neurons in every batch, got shape {tuple(t.shape)}"
                    )
        x0, y0 = tx - self._shift[0], ty - self._shift[1]
        k, l = x0.square().sum(1), y0.square().sum(1)
        batch = {
            "s_x": x0.sum(0),
            "s_y": y0.sum(0),
            "xx": x0.T @ x0,
            "yy": y0.T @ y0,
            "xy": x0.T @ y0,
            "k": k.sum(),
            "l": l.sum(),
            "kk": k @ k,
            "ll": l @ l,
            "kl": k @ l,
            "lx": l @ x0,
            "ky": k @ y0,
            "kx": k @ x0,
            "ly": l @ y0,
        }
        for key, value in batch.items():
            self._stats[key] = self._stats[key] + value if key in self._stats else value
        self.n += tx.shape[0]
        return self

    def value(self) -> float:
        """CKA of every datapoint seen so far."""
        n = self.n
        if n < (4 if self.debiased else 2):
            raise BadInputError(
                f"{'debiased ' if self.debiased else ''}MinibatchCKA needs at least "
                f"{4 if self.debiased else 2} datapoints before value(), got {n}"
            )
        s = self._stats
        mu, nu = s["s_x"] / n, s["s_y"] / n  # means of the shifted data
        mu2, nu2 = float(mu @ mu), float(nu @ nu)
        cross = float((s["xy"] - n * torch.outer(mu, nu)).square().sum())
        self_x = float((s["xx"] - n * torch.outer(mu, mu)).square().sum())
        self_y = float((s["yy"] - n * torch.outer(nu, nu)).square().sum())
        sum_k, sum_l = float(s["k"]) - n * mu2, float(s["l"]) - n * nu2
        # sum_i k_c,i l_c,i with k_c,i = ||x_i - mu||^2 expanded into the accumulated moments
        sum_kl = (
            float(s["kl"])
            - 2 * float(s["ky"] @ nu)
            - 2 * float(s["lx"] @ mu)
            + 4 * float(mu @ s["xy"] @ nu)
            + nu2 * float(s["k"])
            + mu2 * float(s["l"])
            - 3 * n * mu2 * nu2
        )
        sum_kk = (
            float(s["kk"])
            - 4 * float(s["kx"] @ mu)
            + 4 * float(mu @ s["xx"] @ mu)
            + 2 * mu2 * float(s["k"])
            - 3 * n * mu2 * mu2
        )
        sum_ll = (
            float(s["ll"])
            - 4 * float(s["ly"] @ nu)
            + 4 * float(nu @ s["yy"] @ nu)
            + 2 * nu2 * float(s["l"])
            - 3 * n * nu2 * nu2
        )
        return cka_from_moments(cross, self_x, self_y, sum_k, sum_l, sum_kl, sum_kk, sum_ll, n, self.debiased)
