"""Summaries of similarity matrices: within- and between-group means, rank correlation."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from etude.errors import BadInputError

__all__ = ["between_groups", "spearman", "within_group"]


def within_group(matrix: np.ndarray, members: Sequence[int]) -> tuple[float, float]:
    """Mean and sd of matrix[i, j] over ordered pairs i != j of `members` (both PWCCA directions)."""
    idx = list(members)
    if len(idx) < 2:
        raise BadInputError(f"a group needs at least 2 members for pairs, got {len(idx)}")
    values = [matrix[i, j] for i in idx for j in idx if i != j]
    return float(np.mean(values)), float(np.std(values))


def between_groups(matrix: np.ndarray, first: Sequence[int], second: Sequence[int]) -> tuple[float, float]:
    """Mean and sd of matrix[i, j] and matrix[j, i] over i in `first`, j in `second`."""
    values = [matrix[i, j] for i in first for j in second] + [matrix[j, i] for i in first for j in second]
    return float(np.mean(values)), float(np.std(values))


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two equally long sequences (average ranks for ties)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise BadInputError(f"spearman needs two 1-D sequences of equal length >= 2, got {a.shape} and {b.shape}")

    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):  # ties share their average rank
            r[v == value] = r[v == value].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra @ ra) * (rb @ rb)))
    return float(ra @ rb / denom) if denom > 0 else 0.0
