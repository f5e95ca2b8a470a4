"""Measuring representations: clustering error with a k-means floor, linear-probe accuracy, code
stability across a family's transformations, and a paired comparison with an interval.

Wu et al., AAAI 2020 (arXiv:1902.01950): a linear classifier on the codes of unseen
transformations (the transformation-invariance experiment), how little codes move across the
transformations a family was amortized over (the official ``scripts/analysis/distance.py``), and
clustering the points of a new MoG dataset from their latent codes (arXiv v1).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from etude.errors import BadInputError
from etude.statistics import paired_difference  # re-exported: etude.meta.paired_difference

__all__ = ["clustering_error", "code_stability", "kmeans_labels", "linear_probe_accuracy", "paired_difference"]


def _array(name: str, value: object, dims: int) -> np.ndarray:
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if arr.ndim != dims or arr.shape[0] == 0:
        raise BadInputError(f"{name} must be a non-empty {dims}-D array, got shape {arr.shape}")
    return arr


def clustering_error(predicted: object, labels: object) -> float:
    """Fraction of points misassigned under the best matching of predicted clusters to true ones.

    error = 1 - max_pi mean[pi(predicted) == labels] over bijections pi (up to 6 clusters).
    """
    pred, true = _array("predicted", predicted, 1).astype(int), _array("labels", labels, 1).astype(int)
    if pred.shape != true.shape:
        raise BadInputError(f"predicted and labels must have one length, got {pred.shape} and {true.shape}")
    k = int(max(pred.max(), true.max())) + 1
    if k > 6:
        raise BadInputError(f"clustering_error matches at most 6 clusters by brute force, got {k}")
    best = max(np.mean(np.asarray(perm)[pred] == true) for perm in itertools.permutations(range(k)))
    return float(1.0 - best)


def kmeans_labels(points: object, k: int = 2, seed: int = 0, restarts: int = 10) -> np.ndarray:
    """k-means (scikit-learn, `restarts` initializations) cluster ids [N] of points [N, F]."""
    from sklearn.cluster import KMeans

    x = _array("points", points, 2).astype(np.float64)
    return KMeans(n_clusters=k, n_init=restarts, random_state=seed % 2**32).fit_predict(x)


def linear_probe_accuracy(train_x: object, train_y: object, test_x: object, test_y: object, seed: int = 0) -> float:
    """Test accuracy of a standardized multinomial logistic regression fitted on (train_x [N, F], train_y [N])."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a, b = _array("train_x", train_x, 2), _array("test_x", test_x, 2)
    ya, yb = _array("train_y", train_y, 1), _array("test_y", test_y, 1)
    if a.shape[0] != ya.shape[0] or b.shape[0] != yb.shape[0] or a.shape[1] != b.shape[1]:
        raise BadInputError(f"probe shapes disagree: train {a.shape}/{ya.shape}, test {b.shape}/{yb.shape}")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed % 2**32))
    probe.fit(a, ya)
    return float(probe.score(b, yb))


def code_stability(codes: object) -> float:
    """Within-image over between-image code distance for codes [V, Q, Z] of Q images under V transformations.

    ratio = mean_{q, v != v'} ||z_vq - z_v'q|| / mean_{v, q != q'} ||z_vq - z_vq'||: 0 when a code ignores
    the transformation, about 1 when the transformation moves a code as far as a change of image.
    """
    z = torch.as_tensor(_array("codes", codes, 3), dtype=torch.float64)
    v, q, _ = z.shape
    if v < 2 or q < 2:
        raise BadInputError(f"codes need >= 2 transformations and >= 2 images, got shape {tuple(z.shape)}")
    within = torch.cdist(z.transpose(0, 1), z.transpose(0, 1))  # [Q, V, V]: one image, two transformations
    between = torch.cdist(z, z)  # [V, Q, Q]: one transformation, two images
    w = within.sum() / (q * v * (v - 1))
    b = between.sum() / (v * q * (q - 1))
    return float(w / b) if b > 0 else float("nan")
