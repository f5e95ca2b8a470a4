"""Plots of the BRUNO study: predictive bits/dim against set size, training curves, sample grids (PNG)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from etude.exchangeable.data import DIGIT_LEVELS
from etude.runtime import pyplot, save_figure

__all__ = ["plot_bits_per_dim", "plot_sample_grid", "plot_study", "plot_training"]


def plot_bits_per_dim(curves: dict[str, Tensor], path: str | Path, title: str = "") -> Path:
    """One line per label: mean bits/dim [n] of x_n given n earlier images, against n."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        ax.plot(range(len(curve)), curve.tolist(), marker=".", label=label)
    ax.set_xlabel("n (images conditioned on)")
    ax.set_ylabel("bits/dim of the next image")
    ax.set_title(title or "predictive bits/dim")
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=100)


def plot_training(logs: dict[str, tuple[list[float], list[int], list[float]]], path: str | Path) -> Path:
    """Training loss per step and validation loss (nats/dim) per model: label -> (loss, val_steps, val_loss)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (loss, val_steps, val_loss) in logs.items():
        line = ax.plot(range(1, len(loss) + 1), loss, alpha=0.4, label=f"{label} train")[0]
        ax.plot(val_steps, val_loss, color=line.get_color(), marker="o", label=f"{label} val")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/dim)")
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=100)


def plot_sample_grid(rows: list[tuple[str, Tensor, Tensor]], path: str | Path, levels: int = 17) -> Path:
    """One row per set: label, context images [k, 1, H, W] (left) and samples [m, 1, H, W] (right).

    Drawn as one image (tiles with a 1-pixel gap, a wide gap between the set and its samples).
    """
    plt = pyplot()
    h, w = rows[0][1].shape[-2:]
    k = max(len(c) for _, c, _ in rows)
    m = max(len(s) for _, _, s in rows)
    gap = 4
    canvas = torch.full((len(rows) * (h + 1), (k + m) * (w + 1) + gap), float("nan"))
    for r, (_, context, samples) in enumerate(rows):
        top = r * (h + 1)
        for j, img in enumerate(context):
            canvas[top : top + h, j * (w + 1) : j * (w + 1) + w] = img[0].clamp(0, levels)
        for j, img in enumerate(samples):
            left = k * (w + 1) + gap + j * (w + 1)
            canvas[top : top + h, left : left + w] = img[0].clamp(0, levels)
    fig, ax = plt.subplots(figsize=(0.45 * canvas.shape[1] / (w + 1) + 1.2, 0.45 * len(rows) + 0.6))
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    ax.imshow(canvas.numpy(), cmap=cmap, vmin=0, vmax=levels, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([(h + 1) * r + h / 2 for r in range(len(rows))])
    ax.set_yticklabels([label for label, _, _ in rows], fontsize=7)
    ax.set_title("left: the conditioning set; right: samples from p(x | set)", fontsize=8)
    return save_figure(fig, path, dpi=100, tight=False, bbox_inches="tight")


def plot_study(first: dict, bpd: dict[str, dict[str, Tensor]], out_dir: Path) -> list[Path]:
    """The bruno study's figures: sample grids of the first seed, bits/dim by position (pooled), training curves."""
    paths = [
        plot_sample_grid(
            first["samples"][split][1], out_dir / f"samples_{split}.png", first.get("levels", DIGIT_LEVELS)
        )
        for split in ("unseen", "seen")
    ]
    curves = {f"{label} {split}": b.mean(0) for label, d in bpd.items() for split, b in d.items()}
    paths.append(
        plot_bits_per_dim(
            curves, out_dir / "bits_per_dim.png", "digits: bits/dim of image n+1 given n images of its class"
        )
    )
    logs = {k: (log.loss, log.val_steps, log.val_loss) for k, log in first["logs"].items()}
    paths.append(plot_training(logs, out_dir / "training.png"))
    return paths
