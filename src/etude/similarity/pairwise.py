"""K x K similarity matrices that factor each representation once and form each pair's product once.

Each representation is checked, scaled and summarized in one pass and its centred Gram matrix
X_c^T X_c formed once (one BLAS syrk, `etude.similarity.gram`). For CCA, SVCCA and PWCCA it is
then whitened once (one Cholesky or symmetric eigendecomposition, `etude.similarity.whitening`),
and each unordered pair costs one cross-product X_i^T X_j, two small products and one SVD;
PWCCA's two directions (weights from i, weights from j) share that SVD. CKA reads ||X_c^T X_c||_F
from the same Gram and <K_i, K_j> from the same cross-product, so asking for several metrics at
once (``metric=("cca", "pwcca", "cka")``) does the n-sized work once for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from etude.errors import BadInputError
from etude.similarity._validation import check_matrices, warn_constant, warn_small_sample
from etude.similarity.cca import (
    check_epsilon,
    check_keep,
    check_threshold,
    check_variant,
    correlations,
    pwcca_pair,
    svd_directions,
    threshold_mean,
)
from etude.similarity.cka import check_debiased, cka_from_moments, moments, wide
from etude.similarity.gram import cross
from etude.similarity.whitening import Whitened, whiten

__all__ = ["METRICS", "pairwise"]

METRICS = ("cca", "svcca", "pwcca", "cka")


def _metrics(metric: Any) -> list[str]:
    names = [metric] if isinstance(metric, str) else list(metric) if isinstance(metric, (tuple, list)) else [metric]
    for name in names:
        if name not in METRICS:
            raise BadInputError(f"metric must be one of {METRICS} (or a list of them), got {name!r}")
    if not names or len(set(names)) < len(names):
        raise BadInputError(f"metric must name each of {METRICS} at most once, got {metric!r}")
    return names


def pairwise(
    reps: Sequence[Any],
    metric: str | Sequence[str] = "pwcca",
    *,
    epsilon: float = 0.0,
    threshold: float | None = None,
    keep: float | int = 0.99,
    variant: str = "reference",
    debiased: bool = False,
    dtype: Any = "float64",
) -> Any:
    """S[i, j] = metric(reps[i], reps[j]) for K representations of the same n datapoints.

    :param reps: K >= 1 arrays or tensors (n, p_k); widths may differ.
    :param metric: "cca" (`mean_cca`), "svcca", "pwcca" (weights from reps[i]; not symmetric) or "cka"
        (`linear_cka`); or a list of them, which share every n-sized product.
    :param epsilon, threshold: as in `mean_cca` ("cca") and `pwcca` (epsilon).
    :param keep: as in `svcca`.
    :param variant: as in `pwcca`.
    :param debiased: as in `linear_cka`.
    :returns: a float64 NumPy array (K, K); for a list of metrics, {metric: array}.
    :warns SmallSampleWarning: for CCA-family metrics, when n < 5 p_k (SVCCA: 5 k) for some k.
    """
    names = _metrics(metric)
    if isinstance(reps, (np.ndarray, torch.Tensor)) or not isinstance(reps, Sequence) or len(reps) == 0:
        raise BadInputError(f"reps must be a non-empty list of (n, p) arrays, got {type(reps).__name__}")
    labels = [f"reps[{i}]" for i in range(len(reps))]
    mats = check_matrices(list(reps), labels, dtype, pairwise=True)  # exact powers of two, one pass each
    n, k = mats[0].shape[0], len(mats)
    if "cka" in names:
        check_debiased(debiased, n)
    if "svcca" in names:
        keep = check_keep(keep)
    if "pwcca" in names:
        check_variant(variant)
    threshold = check_threshold(threshold)
    epsilon = check_epsilon(epsilon)
    factors = _whitened(names, mats, epsilon)
    dims = {name: [svd_directions(f, keep) if name == "svcca" else None for f in fs] for name, fs in factors.items()}
    _warn_cca_inputs(names, mats, labels, factors, dims)
    out = {name: np.zeros((k, k)) for name in names}
    for i in range(k):
        for j in range(i, k):
            _fill_pair(out, i, j, mats, labels, factors, dims, variant=variant, threshold=threshold, debiased=debiased)
    return out[names[0]] if isinstance(metric, str) else out


def _whitened(names: list[str], mats: list, epsilon: float) -> dict[str, list[Whitened]]:
    """Each CCA-family metric's whitened representations; metrics with the same ridge and basis share them.

    SVCCA whitens without a ridge; "cca" reuses an eigenbasis whitening of the same ridge when one exists.
    """
    factors: dict[str, list[Whitened]] = {}
    shared: dict[tuple[float, bool], list[Whitened]] = {}
    for name in sorted((m for m in names if m != "cka"), key=lambda m: m == "cca"):  # eigenbases first
        ridge = epsilon if name != "svcca" else 0.0
        found = shared.get((ridge, True)) if name == "cca" else None
        if found is None:
            found = shared.setdefault(
                (ridge, name != "cca"), [whiten(m, ridge, eigenbasis=name != "cca") for m in mats]
            )
        factors[name] = found
    return factors


def _warn_cca_inputs(names: list[str], mats: list, labels: list[str], factors: dict, dims: dict) -> None:
    """SmallSampleWarning (n < 5 p, or 5 k after SVD) and the constant-representation warning, per metric."""
    n = mats[0].shape[0]
    for name in (m for m in names if m != "cka"):
        for i, (m, dim) in enumerate(zip(mats, dims[name])):
            warn_small_sample(
                labels[i] + (" (after SVD reduction)" if dim is not None else ""),
                n,
                dim if dim is not None else m.shape[1],
            )
        for i, f in enumerate(factors[name]):
            if f.rank == 0:
                warn_constant(labels[i])


def _fill_pair(
    out: dict[str, np.ndarray],
    i: int,
    j: int,
    mats: list,
    labels: list[str],
    factors: dict,
    dims: dict,
    *,
    variant: str,
    threshold: float | None,
    debiased: bool,
) -> None:
    """S[i, j] and S[j, i] of every metric in ``out``, from one cross-product X_i^T X_j when any needs it."""
    a, b = mats[i], mats[j]
    n = a.shape[0]
    needs_product = bool(factors) or ("cka" in out and not wide(a, b))
    product = cross(a, b) if needs_product else None
    for name, s in out.items():
        if name == "cka":
            value = cka_from_moments(*moments(a, b, debiased, product), n, debiased, names=(labels[i], labels[j]))
            s[i, j] = s[j, i] = value
        elif name == "pwcca":
            s[i, j], s[j, i] = pwcca_pair(factors[name][i], factors[name][j], variant, product)
        else:
            fi, fj = factors[name][i], factors[name][j]
            rho = correlations(fi, fj, dims[name][i], dims[name][j], product)
            s[i, j] = s[j, i] = threshold_mean(rho, threshold if name == "cca" else None)
