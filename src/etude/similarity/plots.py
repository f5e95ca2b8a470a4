"""Plots of representation similarity (matplotlib, written to PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from etude.runtime import pyplot, save_figure

if TYPE_CHECKING:
    from etude.similarity.experiments import Sizes

__all__ = ["plot_by_layer", "plot_convergence", "plot_matrix", "plot_width", "study_plots"]


def plot_by_layer(
    stats: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]], path: str | Path, title: str = ""
) -> Path:
    """Similarity by hidden layer, one panel per metric and one line (mean ± sd over pairs) per group.

    :param stats: metric -> group -> [(mean, sd) per layer].
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(stats), figsize=(4.2 * len(stats), 3.6), sharey=True, squeeze=False)
    for ax, (metric, groups) in zip(axes[0], stats.items()):
        for group, values in groups.items():
            mean, sd = np.array(values).T
            layers = np.arange(1, len(mean) + 1)
            ax.errorbar(layers, mean, yerr=sd, marker="o", capsize=3, label=group)
        ax.set_title(metric)
        ax.set_xlabel("hidden layer")
        ax.set_xticks(np.arange(1, len(mean) + 1))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("similarity")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path, dpi=90)


def plot_width(
    widths: Sequence[int],
    curves: Mapping[str, Sequence[tuple[float, float]]],
    path: str | Path,
    title: str = "",
    ylabel: str = "PWCCA similarity",
) -> Path:
    """Similarity against network width (log scale), one line (mean ± sd) per curve label."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, values in curves.items():
        mean, sd = np.array(values).T
        ax.errorbar(widths, mean, yerr=sd, marker="o", capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(widths), [str(w) for w in widths])
    ax.set_xlabel("hidden width")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=90)


def plot_convergence(
    epochs: Sequence[int], stats: Mapping[str, Sequence[Sequence[float]]], path: str | Path, title: str = ""
) -> Path:
    """Similarity of each layer to its final representation over training, one panel per metric.

    :param stats: metric -> [per layer: [similarity per epoch]].
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(stats), figsize=(4.2 * len(stats), 3.6), sharey=True, squeeze=False)
    for ax, (metric, layers) in zip(axes[0], stats.items()):
        for i, values in enumerate(layers, start=1):
            ax.plot(epochs, values, marker="o", label=f"layer {i}")
        ax.set_xscale("log", base=2)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("similarity to final")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path, dpi=90)


def plot_matrix(matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "") -> Path:
    """A similarity matrix as a heatmap with row and column labels."""
    plt = pyplot()
    size = 1.2 + 0.42 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(matrix, vmin=min(0.0, float(np.min(matrix))), vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save_figure(fig, path, dpi=90)


def study_plots(
    p: Sizes, out_dir: Path, groups: dict, cnn: dict, convergence: dict, width: dict, lrs: dict, layer: int
) -> list[Path]:
    """The pwcca study's figures (``layer``: the preregistered learning-rate layer, 1-based)."""
    g = p.nets_per_group
    return [
        plot_by_layer(
            groups["by_layer"],
            out_dir / "similarity_by_layer.png",
            f"digits MLPs, {g} true-label (gen) vs {g} shuffled-label (mem) nets; mean ± sd over pairs",
        ),
        plot_by_layer(
            cnn["stats"],
            out_dir / "cnn_similarity_by_layer.png",
            f"digits CNNs {list(p.cnn_channels)}, {g} seeds; mean ± sd over pairs",
        ),
        plot_width(
            list(p.widths),
            width["stats"],
            out_dir / "similarity_by_width.png",
            f"width sweep, {p.width_seeds} seeds per width",
            ylabel="similarity across seeds",
        ),
        plot_convergence(
            convergence["epochs"],
            convergence["by_layer"],
            out_dir / "convergence.png",
            "true-label nets: each layer against its final representation",
        ),
        plot_matrix(
            groups["matrices"]["PWCCA"][-1],
            [f"gen{i}" for i in range(g)] + [f"mem{i}" for i in range(g)],
            out_dir / "pwcca_top_layer.png",
            f"PWCCA, hidden layer {p.depth} (row: weights from)",
        ),
        plot_matrix(
            1 - np.asarray(lrs["clusters"]["distance"][layer - 1]),
            [f"{lr:g}/{i}" for lr, nets in lrs["by_lr"].items() for i in range(len(nets))],
            out_dir / "pwcca_learning_rates.png",
            f"1 - PWCCA distance at hidden layer {layer}, nets by learning rate/seed",
        ),
    ]
