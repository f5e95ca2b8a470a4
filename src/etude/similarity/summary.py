"""Summaries of similarity matrices: within- and between-group means, rank correlation, clustering.

The clustering follows Morcos, Raghu, Bengio 2018 (arXiv:1806.05759), Sec. 3.3: networks are
grouped by hierarchical clustering of their pairwise PWCCA distances, scored against the true
groups by the adjusted Rand index (Hubert and Arabie 1985).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from etude.errors import BadInputError

__all__ = [
    "adjusted_rand",
    "between_groups",
    "cluster_by_distance",
    "kmeans_1d",
    "spearman",
    "symmetric_distance",
    "within_group",
]


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
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise BadInputError(f"spearman needs two 1-D sequences of equal length >= 2, got {x.shape} and {y.shape}")

    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):  # ties share their average rank
            r[v == value] = r[v == value].mean()
        return r

    ra, rb = ranks(x), ranks(y)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra @ ra) * (rb @ rb)))
    return float(ra @ rb / denom) if denom > 0 else 0.0


def symmetric_distance(similarity: np.ndarray) -> np.ndarray:
    """D = 1 - (S + S^T) / 2 with a zero diagonal, for a (K, K) similarity matrix S (PWCCA is not symmetric)."""
    s = np.asarray(similarity, dtype=float)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise BadInputError(f"similarity must be a square matrix, got shape {s.shape}")
    d = 1.0 - (s + s.T) / 2
    np.fill_diagonal(d, 0.0)
    return d


def cluster_by_distance(distance: np.ndarray, k: int) -> np.ndarray:
    """Average-linkage hierarchical clustering of a (K, K) distance matrix cut into k clusters: labels [K]."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    d = np.asarray(distance, dtype=float)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or not 1 <= k <= d.shape[0]:
        raise BadInputError(f"need a square distance matrix and 1 <= k <= its size, got {d.shape} and k={k}")
    condensed = squareform(np.clip((d + d.T) / 2, 0.0, None), checks=False)
    return fcluster(linkage(condensed, method="average"), t=k, criterion="maxclust") - 1


def kmeans_1d(values: Sequence[float], k: int, seed: int = 0) -> np.ndarray:
    """k-means cluster labels [K] of scalar values (scikit-learn, 10 restarts)."""
    from sklearn.cluster import KMeans

    v = np.asarray(values, dtype=float).reshape(-1, 1)
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(v)


def adjusted_rand(labels: Sequence[int] | np.ndarray, truth: Sequence[int] | np.ndarray) -> float:
    """Adjusted Rand index of two labellings: 1 for identical partitions, about 0 for random ones.

    ARI = (sum_ij C(n_ij, 2) - E) / (max - E), E = sum_i C(a_i, 2) sum_j C(b_j, 2) / C(n, 2),
    max = (sum_i C(a_i, 2) + sum_j C(b_j, 2)) / 2, over the contingency table n_ij.
    """
    a, b = np.asarray(labels), np.asarray(truth)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise BadInputError(f"labellings must be 1-D of equal length >= 2, got {a.shape} and {b.shape}")
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table, (ia, ib), 1)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    total = len(a) * (len(a) - 1) / 2
    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / total
    top = (rows + cols) / 2
    return 1.0 if top == expected else float((index - expected) / (top - expected))
