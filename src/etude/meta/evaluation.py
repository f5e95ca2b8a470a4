"""Measuring representations: clustering error with a k-means floor, and linear-probe accuracy.

Wu et al., AAAI 2020 (arXiv:1902.01950), Sec. 5.1 (cluster the points of a new MoG dataset from
their latent codes) and Sec. 5.3 (a linear classifier on the codes of unseen transformations).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from etude.errors import BadInputError

__all__ = ["clustering_error", "kmeans_labels", "linear_probe_accuracy"]


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
