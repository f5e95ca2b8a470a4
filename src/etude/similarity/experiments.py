"""The pwcca study's experiments as functions that return plain data (lists, floats, arrays).

Morcos, Raghu, Bengio 2018 (arXiv:1806.05759): Sec. 3.1 (generalizing vs memorizing networks,
layer by layer), Sec. 3.2 (width; similarity against test accuracy), Sec. 3.3 (networks cluster by
learning rate); Raghu et al. 2017 (arXiv:1706.05806), Sec. 4.1 (lower layers, bottom-up
convergence). Networks are small MLPs or CNNs on scikit-learn's digits (`etude.similarity.digits`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch

from etude.similarity.digits import Digits, TrainedNet, train_mlp
from etude.similarity.pairwise import pairwise
from etude.similarity.summary import (adjusted_rand, between_groups, cluster_by_distance, kmeans_1d,
                                      symmetric_distance, within_group)

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["METRICS", "convergence_to_final", "lr_clustering", "peer_similarity", "similarity_by_layer",
           "train_nets"]

METRICS = {"pwcca": "PWCCA", "svcca": "SVCCA", "cka": "CKA"}
"""pairwise() metric -> label."""


def train_nets(widths: Sequence[int], data: Digits, labels: torch.Tensor, seeds: Sequence[int], epochs: int, *,
               lr: float, batch_size: int, ckpt: Path, tag: str, resume: bool, arch: str = "mlp",
               snapshots: Sequence[int] = (), fabric: "Fabric | None" = None) -> list[TrainedNet]:
    """One network per seed on (data.x_train, labels), test accuracy on the true test labels (through
    ``fabric``'s devices and ranks when given, see `train_mlp`)."""
    return [train_mlp(list(widths), data.x_train, labels, seed=s, epochs=epochs, lr=lr, batch_size=batch_size,
                      x_test=data.x_test, y_test=data.y_test, snapshots=snapshots, arch=arch,
                      checkpoint=ckpt / f"{tag}_{i}.pt", resume=resume, desc=f"{tag} {i + 1}/{len(seeds)}",
                      fabric=fabric)
            for i, s in enumerate(seeds)]


def similarity_by_layer(reps: Sequence[Sequence[torch.Tensor]], within: Mapping[str, Sequence[int]],
                        between: Mapping[str, tuple[Sequence[int], Sequence[int]]] | None = None,
                        metrics: Mapping[str, str] = METRICS) -> tuple[dict, dict]:
    """Mean and sd of pairwise similarity per metric, group and layer, and the (K, K) matrices.

    :param reps: per network, its hidden representations (one (n, p) tensor per layer).
    :returns: ({label: {group: [(mean, sd) per layer]}}, {label: [matrix per layer]}).
    """
    depth = len(reps[0])
    stats: dict[str, dict[str, list[tuple[float, float]]]] = {}
    matrices: dict[str, list[np.ndarray]] = {}
    for metric, label in metrics.items():
        groups: dict[str, list[tuple[float, float]]] = {g: [] for g in [*within, *(between or {})]}
        matrices[label] = []
        for layer in range(depth):
            s = pairwise([r[layer] for r in reps], metric)
            matrices[label].append(s)
            for name, members in within.items():
                groups[name].append(within_group(s, members))
            for name, (a, b) in (between or {}).items():
                groups[name].append(between_groups(s, a, b))
        stats[label] = groups
    return stats, matrices


def convergence_to_final(nets: Sequence[TrainedNet], probe: torch.Tensor, epochs: Sequence[int],
                         metrics: Mapping[str, str] = METRICS) -> dict[str, list[list[float]]]:
    """Similarity of each hidden layer after each snapshot epoch to its final self (both PWCCA
    directions averaged), mean over the networks: {label: [layer][epoch]}."""
    finals = [net.representations(probe) for net in nets]
    depth = len(finals[0])
    out = {label: [[0.0] * len(epochs) for _ in range(depth)] for label in metrics.values()}
    for net, final in zip(nets, finals):
        for k, epoch in enumerate(epochs):
            early = net.representations(probe, epoch)
            for layer in range(depth):
                for metric, label in metrics.items():
                    s = pairwise([early[layer], final[layer]], metric)
                    out[label][layer][k] += (s[0, 1] + s[1, 0]) / 2 / len(nets)
    return out


def peer_similarity(matrices: Sequence[np.ndarray], groups: Sequence[Sequence[int]]) -> list[float]:
    """Per network, its mean similarity to the other members of its group (both directions), averaged
    over layers: matrices = one (K, K) similarity matrix per layer."""
    out = [0.0] * matrices[0].shape[0]
    for members in groups:
        for i in members:
            peers = [j for j in members if j != i]
            out[i] = float(np.mean([(m[i, j] + m[j, i]) / 2 for m in matrices for j in peers]))
    return out


def lr_clustering(nets_by_lr: Mapping[float, Sequence[TrainedNet]], probe: torch.Tensor, seed: int = 0) -> dict:
    """Cluster networks trained with different learning rates by their PWCCA distances (Sec. 3.3).

    Distance = 1 - symmetrized PWCCA similarity on ``probe``, averaged over hidden layers; average-
    linkage clustering into as many clusters as learning rates, scored by the adjusted Rand index
    against the learning rates; the baseline clusters the final test accuracies with 1-D k-means.
    """
    nets = [n for group in nets_by_lr.values() for n in group]
    truth = [i for i, group in enumerate(nets_by_lr.values()) for _ in group]
    reps = [n.representations(probe) for n in nets]
    depth = len(reps[0])
    distance = np.mean([symmetric_distance(pairwise([r[layer] for r in reps], "pwcca")) for layer in range(depth)], 0)
    k = len(nets_by_lr)
    found = cluster_by_distance(distance, k)
    accuracy = [n.test_accuracy for n in nets]
    baseline = kmeans_1d(accuracy, k, seed)
    return {"learning_rates": list(nets_by_lr), "truth": truth, "clusters": found.tolist(),
            "ari_pwcca": adjusted_rand(found, truth), "accuracy_clusters": baseline.tolist(),
            "ari_accuracy": adjusted_rand(baseline, truth), "test_accuracy": accuracy,
            "distance": distance.tolist()}
