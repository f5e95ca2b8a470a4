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

__all__ = ["cross", "folded", "gram", "syrk"]


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
