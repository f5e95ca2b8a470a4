"""Plots of the metavae study: per-method bars with per-seed dots and the paper's marks (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from etude.meta.experiments import KMEANS, METHODS, RAW
from etude.runtime import pyplot, save_figure

__all__ = ["plot_clusters", "plot_method_bars", "plot_study"]


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


def plot_study(metrics: dict, example: dict, out_dir: Path) -> list[Path]:
    """The metavae study's figures from its metrics (learned methods as bars; k-means or raw pixels as the floor)."""

    def learned(values: dict) -> dict:
        return {k: v for k, v in values.items() if k in METHODS}

    mog, rot, st = metrics["mog_error"], metrics["rotation_probe"], metrics["code_stability"]
    paths = [
        plot_method_bars(
            learned(mog),
            out_dir / "mog_clustering.png",
            "Clustering error on held-out MoG datasets",
            "error",
            floor=mog[KMEANS],
            floor_label="k-means on raw points",
        ),
        plot_method_bars(
            learned(rot),
            out_dir / "rotation_probe.png",
            "Linear probe on unseen rotations",
            "accuracy",
            paper={"MetaVAE": 0.89, "VHE": 0.83, "NS": 0.75},
            floor=rot[RAW],
            floor_label=RAW,
        ),
        plot_method_bars(
            learned(st),
            out_dir / "code_stability.png",
            "Code distance across seen rotations / between images",
            "ratio (lower: codes stay put)",
            floor=st[RAW],
            floor_label=RAW,
        ),
        plot_clusters(
            example.pop("points"),
            example,
            out_dir / "mog_example.png",
            "One held-out MoG dataset: true components and 2-means on each method's codes",
        ),
    ]
    if "scale_probe" in metrics:
        sc = metrics["scale_probe"]
        paths.append(
            plot_method_bars(
                learned(sc),
                out_dir / "scale_probe.png",
                "Linear probe on unseen large scales",
                "accuracy",
                paper={"MetaVAE": 0.9, "VHE": 0.45, "NS": 0.32},
                floor=sc[RAW],
                floor_label=RAW,
            )
        )
    return paths
