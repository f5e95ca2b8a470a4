"""Plots of QMCVI experiments (matplotlib, written to PNG): variance ratios, ELBO traces, schedules."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from etude.runtime import pyplot, save_figure

__all__ = ["plot_variance_ratios", "plot_elbo_traces", "plot_schedule"]

_COLOURS = {"mc": "tab:blue", "rqmc": "tab:orange"}


def plot_variance_ratios(
    ratios: dict[str, dict[str, list[float]]],
    sizes: Sequence[int],
    path: str | Path,
    reference: dict[str, list[float]] | None = None,
) -> Path:
    """MC/RQMC gradient-variance ratio against N (log-log), one line per model and phase.

    :param ratios: model -> phase ('init', 'trained') -> ratio per N.
    :param reference: model -> reference ratios per N (e.g. another run), drawn dotted.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (model, phases) in enumerate(ratios.items()):
        colour = f"C{i}"
        for phase, style in (("init", "-o"), ("trained", "--s")):
            if phase in phases:
                ax.plot(sizes, phases[phase], style, color=colour, label=f"{model} ({phase})", markersize=4)
        if reference and model in reference:
            ax.plot(sizes, reference[model], ":", color=colour, alpha=0.7)
    ax.plot(sizes, [n / sizes[0] for n in sizes], color="grey", lw=0.8, label="slope 1 (ratio ~ N)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("N (samples per gradient)")
    ax.set_ylabel("tr Var MC / tr Var RQMC")
    ax.set_title("Gradient variance reduction by RQMC" + (" (dotted: reference)" if reference else ""))
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path, dpi=90)


def plot_elbo_traces(
    traces: dict[str, dict[str, torch.Tensor]], steps: Sequence[int], path: str | Path, n: int
) -> Path:
    """Gap to the best ELBO (log scale) against iteration, mean and range over seeds, per model.

    :param traces: model -> sampler ('mc', 'rqmc') -> evaluation ELBO [evals, seeds].
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, len(traces), figsize=(3.6 * len(traces), 3.4), squeeze=False)
    for ax, (model, by_sampler) in zip(axes[0], traces.items()):
        best = max(float(v.max()) for v in by_sampler.values())
        for sampler, values in by_sampler.items():
            gap = (best - values).clamp_min(1e-3)
            ax.plot(steps, gap.mean(1), color=_COLOURS.get(sampler), label=sampler.upper())
            ax.fill_between(steps, gap.min(1).values, gap.max(1).values, color=_COLOURS.get(sampler), alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_title(f"{model} (N = {n})")
    axes[0][0].set_ylabel("best ELBO - ELBO (nats)")
    axes[0][0].legend(fontsize=8)
    return save_figure(fig, path, dpi=90)


def plot_schedule(
    errors: dict[str, torch.Tensor],
    sizes: list[int],
    stage_sizes: Sequence[int],
    stage_errors: dict[str, list[float]],
    path: str | Path,
) -> Path:
    """Left: squared distance to the optimum over iterations with N_t; right: stage error vs N (log-log).

    :param errors: sampler -> [steps + 1, seeds] squared distances; ``sizes``: N per step.
    """
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for sampler, err in errors.items():
        left.plot(range(err.shape[0]), err.mean(1), color=_COLOURS.get(sampler), label=sampler.upper(), lw=0.8)
    left.set_yscale("log")
    left.set_xlabel("iteration")
    left.set_ylabel("||lambda - lambda*||^2 (mean over seeds)")
    twin = left.twinx()
    twin.step(range(1, len(sizes) + 1), sizes, color="grey", lw=0.8, where="post")
    twin.set_yscale("log", base=2)
    twin.set_ylabel("N_t", color="grey")
    left.legend(fontsize=8)
    for sampler, values in stage_errors.items():
        right.plot(stage_sizes, values, "-o", color=_COLOURS.get(sampler), label=sampler.upper(), markersize=4)
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("N of the stage")
    right.set_ylabel("mean squared error, second half of stage")
    right.set_title("constant step, growing N")
    right.legend(fontsize=8)
    return save_figure(fig, path, dpi=90)
