"""Centred Gram and cross-product matrices of checked representations, each formed once.

With X (n, p) and column means mu, the centred products every metric needs are

    X_c^T X_c = X^T X - n mu mu^T,    X_c^T Y_c = X^T Y - n mu nu^T.

The right-hand sides need no centred copy of the data; they are used when every live neuron has
mu_j^2 <= var_j (biased), where the subtraction cancels at most one bit of X^T X's diagonal, so the
result is as accurate as the product of explicitly centred data. Otherwise (large offsets) the
data are centred once and the product taken of X_c. X^T X is one BLAS ``syrk`` (half the
multiply-adds of a general product; scipy.linalg.blas on the CPU), X^T Y one ``gemm``. Rows and
columns of dead neurons (max = min) are set to exactly 0, as explicit centring would give.
"""

from __future__ import annotations

import numpy as np
import torch

from etude.similarity import _validation
from etude.similarity._validation import Checked

__all__ = ["checked_by_gram", "cross", "folded", "gram", "syrk"]


def syrk(a: torch.Tensor) -> torch.Tensor:
    """A^T A (p, p) for A (n, p): BLAS dsyrk/ssyrk on the CPU (upper triangle, mirrored), A.T @ A elsewhere."""
    if not _validation.numpy_path(a):
        return a.T @ a
    return torch.from_numpy(_syrk(a.numpy()))


def _syrk(array: np.ndarray) -> np.ndarray:
    from scipy.linalg import blas

    array = np.ascontiguousarray(array)
    routine = blas.dsyrk if array.dtype == np.float64 else blas.ssyrk
    upper = routine(1.0, array.T, trans=0, lower=0)  # array.T is A^T in Fortran order: no copy
    diagonal = upper.diagonal().copy()
    full = upper + upper.T  # the strict lower triangle of syrk's fresh output is 0
    np.fill_diagonal(full, diagonal)
    return full


def gram(x: Checked) -> torch.Tensor:
    """X_c^T X_c (p, p), cached on x; records in x.cache["folded"] whether x's raw products may be centred by the mean."""
    if "gram" not in x.cache:
        n = x.shape[0]
        folded = x.likely_small_mean
        if _validation.numpy_path(x.data):  # the same steps in NumPy: fewer dispatches for small p
            mu, live = x.mean.numpy(), x.alive.numpy()
            if folded:  # verified on X^T X's diagonal: n mu_j^2 <= (X^T X)_jj / 2, i.e. mu_j^2 <= var_j
                raw = _syrk(x.data.numpy())
                folded = bool((2 * n * np.square(mu[live]) <= raw.diagonal()[live]).all())
            if folded:
                raw -= n * np.outer(mu, mu)
            else:
                raw = _syrk(x.centred().numpy())
            out = torch.from_numpy(raw)
        else:
            mean, alive = x.mean, x.alive
            out = syrk(x.data) if folded else syrk(x.centred())
            if folded:
                folded = bool((2 * n * mean[alive].square() <= out.diagonal()[alive]).all())
                out = out - n * torch.outer(mean, mean) if folded else syrk(x.centred())
        x.cache["folded"] = folded
        x.cache["gram"] = _zero_dead(out, x, x)
    return x.cache["gram"]


_LARGEST_SQUARE = 2.0**127
"""max_j (X^T X)_jj at or below this: every |x_ij| < 2**64 (the rounding of n squares adds under a factor 2)."""
_SMALLEST_SQUARE = 2.0**-128
"""max_j (X^T X)_jj at or above n times this: the largest |x_ij| >= 2**-65 (subnormal squares add < n 2**-1074)."""
_NORMAL_SQUARE = 2.0**-900
"""A column whose (X^T X)_jj is at least this has normal squares, so its diagonal test is exact to a few ulps."""


def checked_by_gram(tensor: torch.Tensor) -> Checked | None:
    """`check_matrix`'s result for a CPU float64 (n, p) tensor, read off its raw Gram X^T X instead of a min/max pass.

    One syrk, which `gram` needs anyway, gives D_jj = sum_i x_ij^2, and with the column means mu:

    - finite: a NaN or inf in column j makes D_jj NaN or inf (squares cannot cancel), so a finite
      max_j D_jj proves every entry finite;
    - no scaling: n 2**-128 <= max_j D_jj <= 2**127 gives 2**-65 <= max |x_ij| < 2**64, where
      `check_matrix` keeps the data unscaled (`_validation.UNSCALED_RANGE`, exponent 0);
    - centring folds: every column passes `gram`'s own test 2 n mu_j^2 <= D_jj with normal squares
      (D_jj >= 2**-900), or is exactly zero-mean with D_jj = 0. A constant column c != 0 fails
      the test (D_jj = n c^2, 2 n mu^2 = 2 n c^2), so the columns left are live, or all-zero ones,
      found exactly (``any``). The test passing implies mu_j^2 <= var_j <= (range_j / 2)^2 (Popoviciu),
      which is `check_matrix`'s cheap pre-test ``likely_small_mean``.

    Then the data, exponent, mean, dead neurons and Gram matrix are those `check_matrix` and `gram`
    give, without the min/max read. None (nothing decided) otherwise: another dtype or device, a
    non-contiguous tensor, a large offset or constant column (screened on the first rows before
    the syrk), out-of-range scale, or non-finite values; the caller then runs `check_matrix`.
    """
    if tensor.dtype != torch.float64 or not _validation.numpy_path(tensor) or not tensor.is_contiguous():
        return None
    array = tensor.numpy()
    n = array.shape[0]
    mu = array.mean(0)
    head = array[:8]
    if not (np.abs(mu) <= 4.0 * np.abs(head - mu).max(0)).all():  # likely offset or constant: no wasted syrk
        return None
    raw = _syrk(array)
    diagonal = raw.diagonal()
    largest = float(diagonal.max())  # NaN propagates through max, and fails both comparisons
    if not n * _SMALLEST_SQUARE <= largest <= _LARGEST_SQUARE:
        return None
    zero = diagonal == 0.0
    folds = (2 * n * np.square(mu) <= diagonal) & (diagonal >= _NORMAL_SQUARE)
    if not (folds | (zero & (mu == 0.0))).all():
        return None
    alive = np.ones(array.shape[1], dtype=bool)
    if zero.any():
        alive[zero] = array[:, zero].any(0)  # zero mean, zero squares: dead exactly when all zero
    raw -= n * np.outer(mu, mu)
    checked = Checked(tensor, 0, torch.from_numpy(alive), torch.from_numpy(mu), True, bool(alive.all()))
    checked.cache["folded"] = True
    checked.cache["gram"] = _zero_dead(torch.from_numpy(raw), checked, checked)
    return checked


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A^T B through NumPy's BLAS on the CPU (faster than torch's there for tall operands)."""
    if not _validation.numpy_path(a):
        return a.T @ b
    return torch.from_numpy(a.numpy().T @ b.numpy())


def _zero_dead(matrix: torch.Tensor, rows: Checked, cols: Checked) -> torch.Tensor:
    if not rows.all_alive:
        matrix[~rows.alive] = 0.0
    if not cols.all_alive:
        matrix[:, ~cols.alive] = 0.0
    return matrix


def folded(x: Checked) -> bool:
    """Whether x's raw products may be centred by subtracting the mean's (decided with its Gram)."""
    gram(x)
    return bool(x.cache["folded"])


def cross(x: Checked, y: Checked) -> torch.Tensor:
    """X_c^T Y_c (p, q): one product, of the raw data where both sides allow it (see the module docstring).

    Not cached (K representations would hold K^2 of them); `pairwise` forms each pair's once.
    """
    if x is y:
        return gram(x)
    fx, fy = folded(x), folded(y)
    out = _product(x.data if fx else x.centred(), y.data if fy else y.centred())
    if fx and fy:
        if _validation.numpy_path(out):
            out.numpy()[...] -= x.shape[0] * np.outer(x.mean.numpy(), y.mean.numpy())
        else:
            out = out - x.shape[0] * torch.outer(x.mean, y.mean)
    return _zero_dead(out, x, y)
