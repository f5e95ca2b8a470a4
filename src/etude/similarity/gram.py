"""Centred Gram and cross-product matrices of checked representations, each formed once.

With X (n, p) and column means mu, the centred products every metric needs are

    X_c^T X_c = X^T X - n mu mu^T,    X_c^T Y_c = X^T Y - n mu nu^T.

The right-hand sides need no centred copy of the data; they are used when every live neuron has
mu_j^2 <= var_j (biased), where the subtraction cancels at most one bit of X^T X's diagonal, so the
result is as accurate as the product of explicitly centred data. Otherwise (large offsets) the
data are centred once and the product taken of X_c. X^T X is one BLAS ``syrk`` (half the
multiply-adds of a general product; scipy.linalg.blas on the CPU), X^T Y one ``gemm``. Rows and
columns of dead neurons (max = min) are set to exactly 0, as explicit centring would give.

Linear CKA, which needs no more than these three products, takes them from one syrk of the pair
shifted by a column entry near each mean (`centred_joint_gram`) where a copy pays: small pairs,
and pairs with an offset, whose centring copies the data anyway.
"""

from __future__ import annotations

import numpy as np
import torch

from etude.similarity import _validation
from etude.similarity._validation import Checked

__all__ = [
    "centred_joint_gram",
    "checked_by_gram",
    "cross",
    "folded",
    "gram",
    "sample_median",
    "screened_mean",
    "syrk",
]


def syrk(a: torch.Tensor) -> torch.Tensor:
    """A^T A (p, p) for A (n, p): BLAS dsyrk/ssyrk on the CPU (upper triangle, mirrored), A.T @ A elsewhere."""
    if not _validation.numpy_path(a):
        return a.T @ a
    return torch.from_numpy(_syrk(a.numpy()))


def _syrk(array: np.ndarray, mirror: bool = True) -> np.ndarray:
    """A^T A for a NumPy A; with mirror=False only its upper triangle (the strict lower one is 0)."""
    from scipy.linalg import blas

    array = np.ascontiguousarray(array)
    routine = blas.dsyrk if array.dtype == np.float64 else blas.ssyrk
    upper = routine(1.0, array.T, trans=0, lower=0)  # array.T is A^T in Fortran order: no copy
    if not mirror:
        return upper
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

    Then the data, exponent and dead neurons are those `check_matrix` gives, and the mean and Gram
    matrix those of `check_matrix` and `gram` up to rounding (the column sums come from BLAS), without
    the min/max read. None (nothing decided) otherwise: another dtype or device, a
    non-contiguous tensor, a large offset or constant column (screened on the first rows before
    the syrk), out-of-range scale, or non-finite values; the caller then runs `check_matrix`.
    """
    mu = screened_mean(tensor)
    return None if mu is None else _decide(tensor, mu, _syrk(tensor.numpy()))


def _fits(tensor: torch.Tensor) -> bool:
    return tensor.dtype == torch.float64 and _validation.numpy_path(tensor) and tensor.is_contiguous()


def screened_mean(tensor: torch.Tensor) -> np.ndarray | None:
    """Column means of a CPU float64 contiguous tensor whose first rows spread about as far as its mean, else None."""
    if not _fits(tensor):
        return None
    array = tensor.numpy()
    with np.errstate(all="ignore"):  # a mean that overflows, or inf - inf, is refused here without a warning
        mu = _column_means(array)
        spread = np.abs(array[:8] - mu).max(0)
    if not (np.isfinite(mu).all() and (np.abs(mu) <= 4.0 * spread).all()):  # likely offset or constant: no wasted syrk
        return None
    return mu


def _decide(tensor: torch.Tensor, mu: np.ndarray, raw: np.ndarray) -> Checked | None:
    """The Checked of `checked_by_gram` from the means and raw Gram, or None; raw becomes the centred Gram."""
    n = tensor.shape[0]
    diagonal = raw.diagonal()
    largest = float(diagonal.max())  # NaN propagates through max, and fails both comparisons
    if not n * _SMALLEST_SQUARE <= largest <= _LARGEST_SQUARE:
        return None
    zero = diagonal == 0.0
    folds = (2 * n * np.square(mu) <= diagonal) & (diagonal >= _NORMAL_SQUARE)
    if not (folds | (zero & (mu == 0.0))).all():
        return None
    alive = np.ones(mu.shape[0], dtype=bool)
    if zero.any():
        alive[zero] = tensor.numpy()[:, zero].any(0)  # zero mean, zero squares: dead exactly when all zero
    raw -= n * np.outer(mu, mu)
    checked = Checked(tensor, 0, torch.from_numpy(alive), torch.from_numpy(mu), True, bool(alive.all()))
    checked.cache["folded"] = True
    checked.cache["gram"] = _zero_dead(torch.from_numpy(raw), checked, checked)
    return checked


JOINT_LIMIT = 1 << 22
"""Largest n (p + q + 1) for which linear CKA takes `centred_joint_gram` whatever the offset (the
copy into [X' Y' 1] is 32 MB of float64 there): one syrk of it was measured faster than syrk(X),
syrk(Y) and gemm(X^T Y) at 2,000 x 100, the copy included, and no faster at 10,000 x 500, where
data without an offset take the raw Grams (`checked_by_gram`, no copy) and offset data, which
need a centred copy anyway, take the joint syrk."""


def sample_median(array: np.ndarray) -> np.ndarray:
    """Per column, the 17th smallest of 32 rows spread over the data: an entry of each column near its
    centre (about 0.2 standard deviations off for a Gaussian column), and a constant column's value."""
    sample = array[:: max(1, array.shape[0] // 32)][:32]
    return np.partition(sample, sample.shape[0] // 2, axis=0)[sample.shape[0] // 2]


def centred_joint_gram(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(U, Z', mu'): U the upper triangle of [X_c Y_c]^T [X_c Y_c] ((p+q) x (p+q), strict lower triangle
    0) from one syrk, Z' = [X Y] - 1 s^T the shifted data (n, p+q) and mu' their column means (so
    Z' - 1 mu'^T is the centred data), for C-contiguous float64 x (n, p), y (n, q); None where the
    checks fail.

    Each column is shifted by an entry near its centre (s = `sample_median`) while the data are
    written side by side, X' = X - 1 s^T (the one pass that copies them, as cheap as a plain copy):
    the shift leaves the centred products unchanged and brings any offset within reach of folded
    centring. With D = [X' Y' 1]^T [X' Y' 1], whose last column holds the sums n mu', the centred
    Gram is D - n mu' mu'^T (one BLAS syr on the upper triangle). The checks read off D's diagonal,
    as `checked_by_gram` reads them off the raw one:

    - finite: a NaN or inf in a column (or its shift) makes D_jj NaN or inf, which fails the next test;
    - no scaling: n 2**-126 <= max_j D_jj <= 2**124 and |s| <= 2**62 put max |x_ij| in
      [2**-64, 2**63] (|x'| <= |x| + |s| <= 2 max |x|, s being an entry), where `check_matrix` keeps
      the data unscaled (`_validation.UNSCALED_RANGE`): the same numbers as the general path;
    - the fold cancels at most one bit: every column has 2 n mu'_j^2 <= D_jj with normal squares
      (D_jj >= 2**-900), or D_jj = 0 = mu'_j. A constant column equals its shift, so x' and its
      rows of U are exactly 0 there, as `check_matrix`'s dead neurons give.
    """
    from scipy.linalg import blas

    (n, p), q = x.shape, y.shape[1]
    shifts = (sample_median(x), sample_median(y))
    if not all(float(np.abs(s).max()) <= 2.0**62 for s in shifts):  # NaN fails too
        return None
    stacked = np.empty((n, p + q + 1))
    target = torch.from_numpy(stacked)
    torch.sub(torch.from_numpy(x), torch.from_numpy(shifts[0]), out=target[:, :p])  # 2x NumPy's broadcast here
    torch.sub(torch.from_numpy(y), torch.from_numpy(shifts[1]), out=target[:, p:-1])
    stacked[:, -1] = 1.0
    joint = _syrk(stacked, mirror=False)
    diagonal, mu = joint.diagonal()[:-1], joint[:-1, -1] / n
    if not n * 2.0**-126 <= float(diagonal.max()) <= 2.0**124:
        return None
    folds = (2 * n * np.square(mu) <= diagonal) & (diagonal >= _NORMAL_SQUARE)
    if not (folds | ((diagonal == 0.0) & (mu == 0.0))).all():
        return None
    upper = blas.dsyr(-float(n), mu, a=joint[:-1, :-1], lower=0)  # D - n mu' mu'^T, upper triangle
    return upper, stacked[:, :-1], mu


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

    With A, B the operands (raw data or the explicitly centred copy) and a, b their column means,
    X_c^T Y_c = A^T B - n a b^T. Raw operands have a = mean; a centred copy's a is the residue of
    rounding, 0 to within what centring itself rounds off: it is dropped when both sides are
    centred, and formed (one gemv) when only one is, since the other side's mean multiplies it.
    Not cached (K representations would hold K^2 of them); `pairwise` forms each pair's once.
    """
    if x is y:
        return gram(x)
    fx, fy = folded(x), folded(y)
    out = _product(x.data if fx else x.centred(), y.data if fy else y.centred())
    if fx or fy:
        a = x.mean if fx else _residual_mean(x)
        b = y.mean if fy else _residual_mean(y)
        if _validation.numpy_path(out):
            out.numpy()[...] -= x.shape[0] * np.outer(a.numpy(), b.numpy())
        else:
            out = out - x.shape[0] * torch.outer(a, b)
    return _zero_dead(out, x, y)


def _residual_mean(x: Checked) -> torch.Tensor:
    """Column means of x's explicitly centred copy (rounding residue, not exactly 0)."""
    centred = x.centred()
    if _validation.numpy_path(centred):
        return torch.from_numpy(_column_means(centred.numpy()))
    return centred.mean(0)


def _column_means(array: np.ndarray) -> np.ndarray:
    """Column means of an (n, p) array by one gemv (a third of ``array.mean(0)``'s time)."""
    return array.T @ np.ones(array.shape[0]) / array.shape[0]
