"""Plots of learning dynamics in iterated games (matplotlib, written to PNG)."""

from __future__ import annotations

from pathlib import Path

import torch

from etude.games.matrix import STATES
from etude.games.training import History
from etude.runtime import pyplot, save_figure

__all__ = ["plot_policies", "plot_rewards", "plot_coin_curves", "plot_estimate_error"]


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
    fig.suptitle(
        title or f"{history.game}: {history.learners[0]} vs {history.learners[1]} ({len(history.seeds)} seeds)"
    )
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


def plot_coin_curves(histories: dict, path: str | Path, title: str = "") -> Path:
    """Coin game over training: own-colour share of picks, picks per step and reward per step (mean ± sd over seeds)."""
    plt = pyplot()
    keys = (
        ("own_share", "own-colour share of picks"),
        ("picks_per_step", "coins picked per step"),
        ("reward", "reward per step (both agents)"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
    for ax, (key, label) in zip(axes, keys):
        for name, history in histories.items():
            c = history.curves[key]  # [seeds, steps]
            mean, sd = c.mean(0), c.std(0) if c.shape[0] > 1 else torch.zeros(c.shape[1])
            steps = torch.arange(c.shape[1])
            ax.plot(steps, mean, label=name)
            ax.fill_between(steps, mean - sd, mean + sd, alpha=0.15)
        ax.set_xlabel("update")
        ax.set_title(label)
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path, dpi=90)


def plot_estimate_error(episodes: list[int], errors: torch.Tensor, path: str | Path, title: str = "") -> Path:
    """Opponent-model error [len(episodes), seeds] against observed episodes, log-log, median and quartiles."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    lo, mid, hi = torch.quantile(errors, torch.tensor([0.25, 0.5, 0.75], dtype=errors.dtype), dim=1)
    n = torch.tensor(episodes, dtype=torch.float64)
    ax.plot(n, mid, marker="o", label="median over runs")
    ax.fill_between(n, lo, hi, alpha=0.2, label="interquartile range")
    ax.plot(n, mid[0] * (n / n[0]) ** -0.5, ls="--", color="grey", label="slope -1/2")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("observed episodes")
    ax.set_ylabel("RMS error of P(C | state)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=90)
