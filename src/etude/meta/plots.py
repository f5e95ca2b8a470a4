"""Plots of the metavae study: per-method bars with per-seed dots and the paper's marks (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from etude.runtime import pyplot, save_figure

__all__ = ["plot_clusters", "plot_method_bars"]


def plot_method_bars(
    values: dict[str, list[float]],
    path: str | Path,
    title: str,
    ylabel: str,
    paper: dict[str, float] | None = None,
    floor: list[float] | None = None,
    floor_label: str = "",
) -> Path:
    """One bar per method (mean over seeds), a dot per seed, the paper's figure as a red mark, a dashed floor."""
    plt = pyplot()
    names = list(values)
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2.5, 3.6))
    for i, name in enumerate(names):
        v = np.asarray(values[name], dtype=float)
        ax.bar(i, v.mean(), color="tab:blue" if name == "MetaVAE" else "tab:gray", alpha=0.7)
        ax.scatter(np.full(len(v), i) + np.linspace(-0.15, 0.15, len(v)), v, color="black", s=12, zorder=3)
        if paper and name in paper:
            ax.scatter(
                [i],
                [paper[name]],
                marker="_",
                s=600,
                color="tab:red",
                zorder=4,
                label="paper" if i == min(j for j, n in enumerate(names) if n in paper) else None,
            )
    if floor is not None:
        ax.axhline(float(np.mean(floor)), color="tab:green", linestyle="--", label=floor_label)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=100)


def plot_clusters(points: np.ndarray, assignments: dict[str, np.ndarray], path: str | Path, title: str) -> Path:
    """Scatter one 2-D dataset [N, 2] once per clustering (colours = cluster ids)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(assignments), figsize=(3 * len(assignments), 3), squeeze=False)
    for ax, (name, labels) in zip(axes[0], assignments.items()):
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="coolwarm", s=6)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=100)
