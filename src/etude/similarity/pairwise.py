"""A K x K similarity matrix that factors each representation once.

For CCA, SVCCA and PWCCA each representation is centred and whitened once (one covariance and
one symmetric eigendecomposition, `etude.similarity.whitening`), and each unordered pair then
costs one product Z_hat_i^T Z_hat_j and one SVD; PWCCA's two directions (weights from i, weights
from j) share that SVD. For CKA each representation is centred once and its ||K||_F cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from etude.errors import BadInputError
from etude.similarity._validation import as_scaled_matrix, warn_constant, warn_small_sample
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
from etude.similarity.cka import check_debiased, cka_from_moments, gram_inner
from etude.similarity.whitening import whiten

__all__ = ["METRICS", "pairwise"]

METRICS = ("cca", "svcca", "pwcca", "cka")


def pairwise(
    reps: Sequence[Any],
    metric: str = "pwcca",
    *,
    epsilon: float = 0.0,
    threshold: float | None = None,
    keep: float | int = 0.99,
    variant: str = "reference",
    debiased: bool = False,
    dtype: Any = "float64",
) -> np.ndarray:
    """S[i, j] = metric(reps[i], reps[j]) for K representations of the same n datapoints.

    :param reps: K >= 1 arrays or tensors (n, p_k); widths may differ.
    :param metric: "cca" (`mean_cca`), "svcca", "pwcca" (weights from reps[i]; not symmetric) or "cka"
        (`linear_cka`).
    :param epsilon, threshold: as in `mean_cca` ("cca") and `pwcca` (epsilon).
    :param keep: as in `svcca`.
    :param variant: as in `pwcca`.
    :param debiased: as in `linear_cka`.
    :returns: a float64 NumPy array (K, K).
    :warns SmallSampleWarning: for CCA-family metrics, when n < 5 p_k (SVCCA: 5 k) for some k.
    """
    if metric not in METRICS:
        raise BadInputError(f"metric must be one of {METRICS}, got {metric!r}")
    if isinstance(reps, (np.ndarray, torch.Tensor)) or not isinstance(reps, Sequence) or len(reps) == 0:
        raise BadInputError(f"reps must be a non-empty list of (n, p) arrays, got {type(reps).__name__}")
    device = next((r.device for r in reps if isinstance(r, torch.Tensor)), None)
    mats = [as_scaled_matrix(r, f"reps[{i}]", dtype, device)[0] for i, r in enumerate(reps)]  # exact powers of two
    n = mats[0].shape[0]
    for i, m in enumerate(mats):
        if m.shape[0] != n:
            raise BadInputError(
                f"every representation needs the same datapoints: reps[0] has shape "
                f"{tuple(mats[0].shape)}, reps[{i}] has shape {tuple(m.shape)}"
            )
    k = len(mats)
    out = np.zeros((k, k))
    if metric == "cka":
        check_debiased(debiased, n)
        centred = [m - m.mean(0) for m in mats]
        rows = [c.square().sum(1) for c in centred]
        selfs = [gram_inner(c, c) for c in centred]
        for i in range(k):
            for j in range(i, k):
                cross = selfs[i] if i == j else gram_inner(centred[i], centred[j])
                ki, kj = rows[i], rows[j]
                out[i, j] = out[j, i] = cka_from_moments(
                    cross,
                    selfs[i],
                    selfs[j],
                    float(ki.sum()),
                    float(kj.sum()),
                    float(ki @ kj),
                    float(ki @ ki),
                    float(kj @ kj),
                    n,
                    debiased,
                    names=(f"reps[{i}]", f"reps[{j}]"),
                )
        return out
    if metric == "svcca":
        keep = check_keep(keep)
    if metric == "pwcca":
        check_variant(variant)
    threshold = check_threshold(threshold)
    epsilon = check_epsilon(epsilon)
    factors = [whiten(m, epsilon if metric != "svcca" else 0.0, eigenbasis=metric != "cca") for m in mats]
    dims = [svd_directions(f, keep) if metric == "svcca" else None for f in factors]
    for i, (m, dim) in enumerate(zip(mats, dims)):
        warn_small_sample(
            f"reps[{i}]" + (" (after SVD reduction)" if dim is not None else ""),
            n,
            dim if dim is not None else m.shape[1],
        )
    for i, f in enumerate(factors):
        if f.rank == 0:
            warn_constant(f"reps[{i}]")
    for f in factors:
        f.basis()  # Z_hat once per representation; pairs then cost one n x r_i x r_j product
    for i in range(k):
        for j in range(i, k):
            if metric == "pwcca":
                out[i, j], out[j, i] = pwcca_pair(factors[i], factors[j], variant)
            else:
                rho = correlations(factors[i], factors[j], dims[i], dims[j])
                out[i, j] = out[j, i] = threshold_mean(rho, threshold if metric == "cca" else None)
    return out
