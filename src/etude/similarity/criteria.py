"""Decision rules of the pwcca study's claims (Morcos, Raghu, Bengio 2018, arXiv:1806.05759; Raghu et al.
2017, arXiv:1706.05806).

Each rule is a pure function from measured numbers to the keyword arguments of ``Claim.decide``
(``measured``, ``holds``, ``conclusive``, ``note``); the thresholds are fixed here, before any run.
Similarity figures are {metric label: {group: [(mean, sd) per layer]}} as `similarity_by_layer` returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from etude.similarity.summary import spearman

__all__ = [
    "ALPHA",
    "MIN_ARI",
    "MIN_MEMORIZED",
    "MIN_TEST",
    "bottom_up",
    "gen_more_similar",
    "late_layer",
    "lr_clusters",
    "similarity_tracks_accuracy",
    "wider_more_similar",
]

MIN_MEMORIZED, MIN_TEST = 0.95, 0.90
"""Train accuracy that counts as memorized (shuffled labels) and test accuracy that counts as generalizing."""
MIN_ARI, ALPHA = 0.5, 0.05
"""Learning-rate clusters: adjusted Rand index and permutation p-value the preregistered layer must reach."""


def gen_more_similar(by_layer: Mapping, nets: int, gen_test: float, mem_train: float) -> dict:
    """Sec. 3.1, Fig. 3: mean gen-gen similarity > mean mem-mem similarity in every hidden layer under every metric."""
    gaps = {label: [gg[0] - mm[0] for gg, mm in zip(st["gen-gen"], st["mem-mem"])] for label, st in by_layer.items()}
    failing = [f"{label} layer {i + 1}" for label, v in gaps.items() for i, d in enumerate(v) if d <= 0]
    return {
        "measured": "; ".join(
            f"{label} gen/mem by layer "
            + ", ".join(f"{gg[0]:.3f}/{mm[0]:.3f}" for gg, mm in zip(st["gen-gen"], st["mem-mem"]))
            for label, st in by_layer.items()
        )
        + f" (gen test acc {gen_test:.3f}, mem train acc {mem_train:.3f}, {nets} nets per group)",
        "holds": not failing,
        "conclusive": nets >= 3 and mem_train >= MIN_MEMORIZED and gen_test >= MIN_TEST,
        "note": ("gen-gen not above mem-mem in: " + ", ".join(failing)) if failing else "",
    }


def bottom_up(
    convergence: Mapping[str, Sequence[Sequence[float]]], epochs: Sequence[int], nets: int, total: int
) -> dict:
    """Raghu Sec. 4.1, Fig. 4: the similarity of each layer to its final self, averaged over the snapshot
    epochs, strictly decreases with depth under every metric ({label: [layer][epoch]})."""
    area = {
        label: [float(np.mean(v)) if len(v) else float("nan") for v in layers] for label, layers in convergence.items()
    }
    falls = {label: all(a > b for a, b in zip(v, v[1:])) for label, v in area.items()}
    return {
        "measured": "; ".join(
            f"{label} mean similarity to final by layer " + ", ".join(f"{v:.3f}" for v in values)
            for label, values in area.items()
        )
        + f" (epochs {list(epochs)} of {total})",
        "holds": bool(area) and all(falls.values()),
        "conclusive": nets >= 3 and len(epochs) >= 3,
        "note": "decreasing with depth under " + (", ".join(k for k, v in falls.items() if v) or "no metric"),
    }


def wider_more_similar(
    widths: Sequence[int],
    trained: Sequence[float],
    untrained: Sequence[float],
    test: Sequence[float],
    seeds: int,
    subset: int,
    all_units: tuple[Sequence[float], Sequence[float]] | None = None,
) -> dict:
    """Sec. 3.2, Fig. 4, footnote 8 (Fig. A7): PWCCA similarity across seeds of a fixed random ``subset``-unit
    slice of the top hidden layer rises with width (Spearman >= 0.9) and rises from the narrowest to the
    widest more for trained nets than for untrained ones (the control)."""
    rank = spearman(list(widths), list(trained)) if len(widths) >= 2 else float("nan")
    rise, control = trained[-1] - trained[0], untrained[-1] - untrained[0]
    extra = ""
    if all_units is not None:
        extra = (
            "; all units of every hidden layer (not the paper's measure): trained "
            + ", ".join(f"{v:.3f}" for v in all_units[0])
            + ", untrained "
            + ", ".join(f"{v:.3f}" for v in all_units[1])
        )
    return {
        "measured": f"top-layer {subset}-unit subset, trained PWCCA by width {list(widths)}: "
        + ", ".join(f"{v:.3f}" for v in trained)
        + f" (Spearman {rank:.2f}, rise {rise:+.3f}); untrained: "
        + ", ".join(f"{v:.3f}" for v in untrained)
        + f" (rise {control:+.3f}); trained test acc by width "
        + ", ".join(f"{a:.3f}" for a in test)
        + extra,
        "holds": bool(rank >= 0.9 and rise > control),
        "conclusive": len(widths) >= 4 and seeds >= 3 and float(np.mean(test)) >= MIN_TEST,
        "note": ""
        if rise > control
        else "untrained networks' similarity rises at least as much with width as trained ones': the width effect "
        "measured here is not specific to training",
    }


def similarity_tracks_accuracy(rank: float, accuracies: Sequence[float]) -> dict:
    """Sec. 3.2, Fig. 4: Spearman correlation of a net's PWCCA similarity to its same-width peers with its
    test accuracy >= 0.5 over the trained width-sweep nets (needs >= 10 nets)."""
    n = len(accuracies)
    return {
        "measured": f"Spearman {rank:.2f} between peer PWCCA similarity and test accuracy over {n} "
        f"trained width-sweep nets (test acc {min(accuracies):.3f}-{max(accuracies):.3f})",
        "holds": bool(rank >= 0.5),
        "conclusive": n >= 10,
    }


def late_layer(depth: int) -> int:
    """The preregistered layer (1-based) of the learning-rate clusters: the paper clusters layer 8 of 11,
    so layer round(8 depth / 11), at least 1."""
    return max(1, min(depth, round(8 * depth / 11)))


def lr_clusters(
    by_layer: Sequence[Mapping[str, float]], layer: int, ari_accuracy: float, rates: int, seeds: int
) -> dict:
    """Sec. 3.3: at the preregistered ``layer`` (1-based), clustering the networks by PWCCA distance
    recovers their learning rates: adjusted Rand index >= 0.5, permutation p < 0.05 and above the ARI of
    clustering their test accuracies. by_layer = [{'ari': ..., 'p': ...} per hidden layer]."""
    pick = by_layer[layer - 1]
    return {
        "measured": f"layer {layer} (preregistered): ARI {pick['ari']:.2f}, permutation p {pick['p']:.3f}; "
        "every layer: "
        + ", ".join(f"{i + 1}: ARI {r['ari']:.2f} (p {r['p']:.3f})" for i, r in enumerate(by_layer))
        + f"; accuracy baseline ARI {ari_accuracy:.2f}",
        "holds": bool(pick["ari"] >= MIN_ARI and pick["p"] < ALPHA and pick["ari"] > ari_accuracy),
        "conclusive": rates >= 3 and seeds >= 3,
    }
