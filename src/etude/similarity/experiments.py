"""The pwcca study's experiments as functions that return plain data (lists, floats, arrays).

Morcos, Raghu, Bengio 2018 (arXiv:1806.05759): Sec. 3.1 (generalizing vs memorizing networks,
layer by layer), Sec. 3.2 (width; similarity against test accuracy), Sec. 3.3 (networks cluster by
learning rate); Raghu et al. 2017 (arXiv:1706.05806), Sec. 4.1 (lower layers, bottom-up
convergence). Networks are small MLPs or CNNs on scikit-learn's digits (`etude.similarity.digits`).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from etude.similarity.digits import Digits, TrainedNet, train_mlp
from etude.similarity.pairwise import pairwise
from etude.similarity.summary import (
    adjusted_rand,
    between_groups,
    cluster_by_distance,
    kmeans_1d,
    spearman,
    symmetric_distance,
    within_group,
)
from etude.statistics import permutation_pvalue

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = [
    "METRICS",
    "Sizes",
    "subset_similarity",
    "bottom_up_convergence",
    "cnn_by_layer",
    "convergence_to_final",
    "generalizing_vs_memorizing",
    "learning_rate_clusters",
    "lr_clustering",
    "peer_similarity",
    "similarity_by_layer",
    "study_metrics",
    "train_networks",
    "train_nets",
    "width_sweep",
]

METRICS = {"pwcca": "PWCCA", "svcca": "SVCCA", "cka": "CKA"}
"""pairwise() metric -> label."""


class Sizes(Protocol):
    """The sizes the experiments read (`etude.similarity.study.PwccaPreset` has them)."""

    @property
    def nets_per_group(self) -> int: ...

    @property
    def width(self) -> int: ...

    @property
    def depth(self) -> int: ...

    @property
    def epochs_true(self) -> int: ...

    @property
    def epochs_shuffled(self) -> int: ...

    @property
    def lr(self) -> float: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def widths(self) -> tuple[int, ...]: ...

    @property
    def width_seeds(self) -> int: ...

    @property
    def width_subset(self) -> int: ...

    @property
    def snapshots(self) -> tuple[int, ...]: ...

    @property
    def cnn_channels(self) -> tuple[int, ...]: ...

    @property
    def cnn_probe(self) -> int: ...

    @property
    def learning_rates(self) -> tuple[float, ...]: ...

    @property
    def lr_seeds(self) -> int: ...

    @property
    def permutations(self) -> int: ...


def train_nets(
    widths: Sequence[int],
    data: Digits,
    labels: torch.Tensor,
    seeds: Sequence[int],
    epochs: int,
    *,
    lr: float,
    batch_size: int,
    ckpt: Path,
    tag: str,
    resume: bool,
    arch: str = "mlp",
    snapshots: Sequence[int] = (),
    fabric: Fabric | None = None,
) -> list[TrainedNet]:
    """One network per seed on (data.x_train, labels), test accuracy on the true test labels (through
    ``fabric``'s devices and ranks when given, see `train_mlp`)."""
    return [
        train_mlp(
            list(widths),
            data.x_train,
            labels,
            seed=s,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            x_test=data.x_test,
            y_test=data.y_test,
            snapshots=snapshots,
            arch=arch,
            checkpoint=ckpt / f"{tag}_{i}.pt",
            resume=resume,
            desc=f"{tag} {i + 1}/{len(seeds)}",
            fabric=fabric,
        )
        for i, s in enumerate(seeds)
    ]


def similarity_by_layer(
    reps: Sequence[Sequence[torch.Tensor]],
    within: Mapping[str, Sequence[int]],
    between: Mapping[str, tuple[Sequence[int], Sequence[int]]] | None = None,
    metrics: Mapping[str, str] = METRICS,
) -> tuple[dict, dict]:
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


def convergence_to_final(
    nets: Sequence[TrainedNet], probe: torch.Tensor, epochs: Sequence[int], metrics: Mapping[str, str] = METRICS
) -> dict[str, list[list[float]]]:
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


def lr_clustering(
    nets_by_lr: Mapping[float, Sequence[TrainedNet]], probe: torch.Tensor, seed: int = 0, permutations: int = 999
) -> dict:
    """Cluster networks trained with different learning rates by their PWCCA distances, layer by layer (Sec. 3.3).

    Per hidden layer: distance = 1 - symmetrized PWCCA similarity on ``probe``; average-linkage clustering
    (this project's choice) into as many clusters as learning rates, scored by the adjusted Rand index
    against the learning rates, with its permutation p-value (the learning-rate labels shuffled
    ``permutations`` times); the baseline clusters the final test accuracies with 1-D k-means.
    """
    nets = [n for group in nets_by_lr.values() for n in group]
    truth = [i for i, group in enumerate(nets_by_lr.values()) for _ in group]
    reps = [n.representations(probe) for n in nets]
    k = len(nets_by_lr)
    layers, distances = [], []
    for layer in range(len(reps[0])):
        distance = symmetric_distance(pairwise([r[layer] for r in reps], "pwcca"))
        found = cluster_by_distance(distance, k)
        ari, p = permutation_pvalue(functools.partial(adjusted_rand, found), truth, permutations, seed + layer)
        layers.append({"clusters": found.tolist(), "ari": ari, "p": p})
        distances.append(distance.tolist())
    accuracy = [n.test_accuracy for n in nets]
    baseline = kmeans_1d(accuracy, k, seed)
    return {
        "learning_rates": list(nets_by_lr),
        "truth": truth,
        "by_layer": layers,
        "accuracy_clusters": baseline.tolist(),
        "ari_accuracy": adjusted_rand(baseline, truth),
        "test_accuracy": accuracy,
        "distance": distances,
    }


def subset_similarity(nets: Sequence[TrainedNet], probe: torch.Tensor, units: np.ndarray) -> tuple[float, float]:
    """Morcos et al. footnote 8: mean and sd over seed pairs of PWCCA similarity between the top hidden layers'
    ``units`` (one fixed index set for every net, so each net contributes a random subset of its units)."""
    reps = [n.representations(probe)[-1][:, torch.as_tensor(units)] for n in nets]
    return within_group(pairwise(reps, "pwcca"), range(len(nets)))


# -- the study's experiments, in the order `PwccaStudy.run` calls them ------------------------------
# Each takes the preset, the data and `common` (train_nets' lr, batch_size, ckpt, resume), records
# its wall time in `timings` and returns plain data; `PwccaStudy` decides the claims from it.


def train_networks(
    p: Sizes, data: Digits, seed: int, ckpt: Path, resume: bool, fabric: Fabric | None = None
) -> dict[str, Any]:
    """Every network of the study, each seeded on its own (through ``fabric``'s devices and ranks when given):
    the true- and shuffled-label MLP groups ('gen', 'mem'), the CNNs ('cnn'), the width sweep
    ('width': {(width, 'trained' | 'untrained'): nets}) and the learning-rate groups ('lr': {lr: nets})."""
    common: dict[str, Any] = {"lr": p.lr, "batch_size": p.batch_size, "ckpt": ckpt, "resume": resume, "fabric": fabric}
    base, g = seed * 10_000, p.nets_per_group
    mlp = [p.width] * p.depth
    gen = train_nets(
        mlp,
        data,
        data.y_train,
        [base + i for i in range(g)],
        p.epochs_true,
        tag="true",
        snapshots=p.snapshots,
        **common,
    )
    mem = train_nets(
        mlp,
        data,
        data.shuffled_labels(seed + 7919),
        [base + 100 + i for i in range(g)],
        p.epochs_shuffled,
        tag="shuffled",
        **common,
    )
    cnn = train_nets(
        list(p.cnn_channels),
        data,
        data.y_train,
        [base + 200 + i for i in range(g)],
        p.epochs_true,
        tag="cnn",
        arch="cnn",
        **common,
    )
    width = _width_sweep(p, data, base, common)
    by_lr = _lr_groups(p, data, base, gen, common)
    return {"gen": gen, "mem": mem, "cnn": cnn, "width": width, "lr": by_lr}


def _width_sweep(p: Sizes, data: Digits, base: int, common: dict[str, Any]) -> dict:
    """{(width, 'trained' | 'untrained'): MLPs of that width}, seeds base + 1000 + 100 w + s."""
    return {
        (width, kind): train_nets(
            [width] * p.depth,
            data,
            data.y_train,
            [base + 1000 + 100 * wi + s for s in range(p.width_seeds)],
            epochs,
            tag=f"width{width}_{kind}",
            **common,
        )
        for wi, width in enumerate(p.widths)
        for kind, epochs in (("trained", p.epochs_true), ("untrained", 0))
    }


def _lr_groups(p: Sizes, data: Digits, base: int, gen: list, common: dict[str, Any]) -> dict:
    """{lr: MLPs trained at lr}; the study's own lr reuses the first 'gen' networks when there are enough."""
    return {
        lr: (
            gen[: p.lr_seeds]
            if lr == p.lr and p.lr_seeds <= p.nets_per_group
            else train_nets(
                [p.width] * p.depth,
                data,
                data.y_train,
                [base + 300 + 10 * j + i for i in range(p.lr_seeds)],
                p.epochs_true,
                tag=f"lr{lr:g}",
                **{**common, "lr": lr},
            )
        )
        for j, lr in enumerate(p.learning_rates)
    }


def generalizing_vs_memorizing(
    p: Sizes, gen: Sequence[TrainedNet], mem: Sequence[TrainedNet], probe: torch.Tensor, timings: dict[str, float]
) -> dict[str, Any]:
    """Sec. 3.1: the MLPs on true labels (gen) and on one shuffled labelling (mem), compared layer by
    layer on ``probe``: by_layer ({label: {group: [(mean, sd)]}}), matrices, and accuracies."""
    g = p.nets_per_group
    start = time.perf_counter()
    gen_idx, mem_idx = range(g), range(g, 2 * g)
    by_layer, matrices = similarity_by_layer(
        [n.representations(probe) for n in [*gen, *mem]],
        {"gen-gen": gen_idx, "mem-mem": mem_idx},
        {"gen-mem": (gen_idx, mem_idx)},
    )
    timings["group_similarity_s"] = time.perf_counter() - start
    gen_test = float(np.mean([n.test_accuracy for n in gen]))
    mem_train = float(np.mean([n.train_accuracy for n in mem]))
    return {
        "gen": gen,
        "mem": mem,
        "by_layer": by_layer,
        "matrices": matrices,
        "gen_test": gen_test,
        "mem_train": mem_train,
    }


def cnn_by_layer(p: Sizes, cnn: Sequence[TrainedNet], probe: torch.Tensor, timings: dict[str, float]) -> dict[str, Any]:
    """Sec. 3.1 on CNNs: the CNNs on true labels, gen-gen similarity by layer on the first
    ``cnn_probe`` probe images (each position a datapoint): stats and mean test accuracy."""
    start = time.perf_counter()
    cnn_stats, _ = similarity_by_layer(
        [n.representations(probe[: p.cnn_probe]) for n in cnn], {"gen-gen": range(len(cnn))}
    )
    cnn_test = float(np.mean([n.test_accuracy for n in cnn]))
    timings["cnn_similarity_s"] = time.perf_counter() - start
    return {"stats": cnn_stats, "test": cnn_test}


def bottom_up_convergence(
    p: Sizes, gen: Sequence[TrainedNet], probe: torch.Tensor, timings: dict[str, float]
) -> dict[str, Any]:
    """Raghu et al. Sec. 4.1: each layer of the generalizing nets after each snapshot epoch (those
    before the last) against its final self: epochs and {label: [layer][epoch]}."""
    start = time.perf_counter()
    epochs = sorted(e for e in set(p.snapshots) if 0 < e < p.epochs_true)
    convergence = convergence_to_final(gen, probe, epochs)
    timings["convergence_s"] = time.perf_counter() - start
    return {"epochs": epochs, "by_layer": convergence}


def width_sweep(
    p: Sizes,
    nets: Mapping[tuple[int, str], Sequence[TrainedNet]],
    probe: torch.Tensor,
    timings: dict[str, float],
    seed: int = 0,
) -> dict[str, Any]:
    """Sec. 3.2: trained and untrained nets per width: similarity across seeds (all units of every hidden layer,
    and a fixed random ``p.width_subset``-unit subset of the top layer, footnote 8), test accuracy, and peer
    similarity per net."""
    start = time.perf_counter()
    sub = f"PWCCA top-layer {p.width_subset} units"
    stats: dict[str, list[tuple[float, float]]] = {
        f"{k} {m}": [] for k in ("trained", "untrained") for m in ("PWCCA", "CKA", sub)
    }
    subsets: dict[int, list[int]] = {}
    test: list[float] = []
    peers: list[float] = []
    accuracies: list[float] = []
    for width in p.widths:
        rng = np.random.default_rng([seed, width])
        subsets[width] = sorted(rng.choice(width, min(p.width_subset, width), replace=False).tolist())
        for kind in ("trained", "untrained"):
            group = nets[width, kind]
            stats[f"{kind} {sub}"].append(subset_similarity(group, probe, np.asarray(subsets[width])))
            layer_stats, mats = similarity_by_layer(
                [n.representations(probe) for n in group],
                {"all": range(len(group))},
                metrics={"pwcca": "PWCCA", "cka": "CKA"},
            )
            for label, st in layer_stats.items():
                means = [m for m, _ in st["all"]]
                sds = [s for _, s in st["all"]]
                stats[f"{kind} {label}"].append(
                    (float(np.mean(means)), float(math.sqrt(np.mean(np.square(sds)) + np.var(means))))
                )
            if kind == "trained":
                test.append(float(np.mean([n.test_accuracy for n in group])))
                peers += peer_similarity(mats["PWCCA"], [range(len(group))])
                accuracies += [n.test_accuracy for n in group]
    timings["width_similarity_s"] = time.perf_counter() - start
    return {
        "stats": stats,
        "subset": sub,
        "subsets": subsets,
        "test": test,
        "peers": peers,
        "accuracies": accuracies,
        "tracks": spearman(peers, accuracies) if len(peers) >= 2 else float("nan"),
    }


def learning_rate_clusters(
    by_lr: Mapping[float, Sequence[TrainedNet]],
    probe: torch.Tensor,
    seed: int,
    timings: dict[str, float],
    permutations: int = 999,
) -> dict[str, Any]:
    """Sec. 3.3: the MLPs per learning rate clustered by PWCCA distance, layer by layer (`lr_clustering`): the
    nets by learning rate and the clustering."""
    start = time.perf_counter()
    clusters = lr_clustering(by_lr, probe, seed, permutations)
    timings["lr_clusters_s"] = time.perf_counter() - start
    return {"by_lr": by_lr, "clusters": clusters}


def study_metrics(
    p: Sizes,
    data: Digits,
    groups: dict,
    cnn: dict,
    convergence: dict,
    width: dict,
    lrs: dict,
    layer: int,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The figures the pwcca study records in result.json (``layer``: the preregistered learning-rate layer)."""
    gen, mem, by_layer, clusters = groups["gen"], groups["mem"], groups["by_layer"], lrs["clusters"]
    sub = [m for m, _ in width["stats"][f"trained {width['subset']}"]]
    return {
        "n_train": int(len(data.x_train)),
        "n_test": int(len(data.x_test)),
        "gen_test_accuracy": groups["gen_test"],
        "gen_train_accuracy": float(np.mean([n.train_accuracy for n in gen])),
        "mem_train_accuracy": groups["mem_train"],
        "mem_test_accuracy": float(np.mean([n.test_accuracy for n in mem])),
        "by_layer": {label: {grp: [m for m, _ in v] for grp, v in st.items()} for label, st in by_layer.items()},
        "gen_minus_mem": {
            label: [gg[0] - mm[0] for gg, mm in zip(st["gen-gen"], st["mem-mem"])] for label, st in by_layer.items()
        },
        "cnn_test_accuracy": cnn["test"],
        "cnn_by_layer": {label: [m for m, _ in st["gen-gen"]] for label, st in cnn["stats"].items()},
        "convergence_epochs": convergence["epochs"],
        "convergence_by_layer": {
            label: [float(np.mean(v)) if len(v) else float("nan") for v in layers]
            for label, layers in convergence["by_layer"].items()
        },
        "widths": list(p.widths),
        "width_test_accuracy": width["test"],
        "width_similarity": {k: [m for m, _ in v] for k, v in width["stats"].items()},
        "width_subset_units": {str(w): u for w, u in width["subsets"].items()},
        "width_spearman": spearman(list(p.widths), sub) if len(sub) >= 2 else float("nan"),
        "similarity_vs_accuracy_spearman": width["tracks"],
        "lr_layer": layer,
        "lr_clusters": {k: v for k, v in clusters.items() if k != "distance"},
        "timings_s": timings,
    }
