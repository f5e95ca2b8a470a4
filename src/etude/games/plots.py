"""Plots of learning dynamics in iterated games (matplotlib, written to PNG)."""

from __future__ import annotations

from pathlib import Path

import torch

from etude.games.matrix import STATES
from etude.games.training import History
from etude.runtime import pyplot, save_figure

__all__ = ["plot_policies", "plot_rewards"]


def plot_policies(history: History, path: str | Path, title: str = "") -> Path:
    """P(cooperate | state) over training for both agents: median and interquartile band over seeds."""
    plt = pyplot()
    probs = history.probabilities()  # [seeds, steps+1, 2, 5]
    steps = torch.arange(probs.shape[1])
    fig, axes = plt.subplots(1, 5, figsize=(15, 3), sharey=True)
    for s, ax in enumerate(axes):
        for agent, colour in ((0, "tab:blue"), (1, "tab:orange")):
            p = probs[:, :, agent, s]
            lo, mid, hi = torch.quantile(p, torch.tensor([0.25, 0.5, 0.75], dtype=p.dtype), dim=0)
            ax.plot(steps, mid, color=colour, label=f"agent {agent + 1}: {history.learners[agent]}")
            ax.fill_between(steps, lo, hi, color=colour, alpha=0.2)
        ax.set_title(f"P(C | {STATES[s]})")
        ax.set_xlabel("step")
        ax.set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=8)
    fig.suptitle(title or f"{history.game}: {history.learners[0]} vs {history.learners[1]} ({len(history.seeds)} seeds)")
    return save_figure(fig, path, dpi=90)


def plot_rewards(histories: dict[str, History], path: str | Path, title: str = "") -> Path:
    """Mean per-step reward (both agents averaged) over training, one line per labelled run."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, history in histories.items():
        r = history.rewards.mean(dim=-1)  # [seeds, steps+1]
        mean, sd = r.mean(0), r.std(0)
        steps = torch.arange(r.shape[1])
        ax.plot(steps, mean, label=label)
        ax.fill_between(steps, mean - sd, mean + sd, alpha=0.15)
    ax.set_xlabel("step")
    ax.set_ylabel("reward per step")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=90)
