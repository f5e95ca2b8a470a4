"""Small summaries of (R)QMC experiments: variance ratios with errors, log-log slopes, hitting times.

Buchholz, Wenzel, Mandt, ICML 2018 (arXiv:1807.01604), Sec. 5 compares gradient variances of
MC and RQMC estimators and ELBO traces over iterations; these functions turn replicates and
traces into those comparisons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from etude.errors import BadInputError

__all__ = ["trace_variance", "variance_ratio", "loglog_slope", "first_reach", "window_mean", "gap_summary"]


def trace_variance(grads: torch.Tensor) -> tuple[float, float]:
    """tr Cov(g) from replicates [R, P] and its standard error.

    tr S = 1/(R-1) sum_r ||g_r - g_bar||^2; its standard error is estimated from the spread of the
    R squared deviations, sd(||g_r - g_bar||^2) / sqrt(R) (times R/(R-1)).
    """
    if grads.dim() != 2 or grads.shape[0] < 3:
        raise BadInputError(f"grads must be [replicates >= 3, P], got shape {tuple(grads.shape)}")
    r = grads.shape[0]
    squared = ((grads - grads.mean(0)) ** 2).sum(-1)  # ||g_r - g_bar||^2 [R]
    value = float(squared.sum() / (r - 1))
    se = float(squared.std() / math.sqrt(r) * r / (r - 1))
    return value, se


def variance_ratio(grads_a: torch.Tensor, grads_b: torch.Tensor) -> tuple[float, float]:
    """tr Cov(a) / tr Cov(b) and the standard error of its natural log (delta method)."""
    va, sa = trace_variance(grads_a)
    vb, sb = trace_variance(grads_b)
    if vb == 0.0:
        return math.inf, math.inf
    return va / vb, math.sqrt((sa / va) ** 2 + (sb / vb) ** 2) if va > 0 else math.inf


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log y against log x (x, y > 0, at least two distinct x)."""
    if len(x) != len(y) or len(x) < 2:
        raise BadInputError(f"x and y need equal lengths >= 2, got {len(x)} and {len(y)}")
    if min(x) <= 0 or min(y) <= 0:
        raise BadInputError("loglog_slope needs positive x and y")
    lx = torch.tensor([math.log(v) for v in x], dtype=torch.float64)
    ly = torch.tensor([math.log(v) for v in y], dtype=torch.float64)
    dx = lx - lx.mean()
    if float((dx**2).sum()) == 0.0:
        raise BadInputError("loglog_slope needs at least two distinct x")
    return float((dx * (ly - ly.mean())).sum() / (dx**2).sum())


def first_reach(steps: Sequence[int], values: torch.Tensor, level: float, never: int) -> torch.Tensor:
    """Per run, the first step whose value is >= level ([evals, S] -> [S]); ``never`` if none is."""
    if values.dim() != 2 or values.shape[0] != len(steps):
        raise BadInputError(f"values must be [evals={len(steps)}, runs], got shape {tuple(values.shape)}")
    reached = values >= level
    step_t = torch.tensor(list(steps), dtype=torch.int64)
    first = torch.where(reached, step_t[:, None], torch.full_like(step_t[:, None], never)).min(0).values
    return first


def window_mean(steps: Sequence[int], values: torch.Tensor, start: float, stop: float) -> torch.Tensor:
    """Per run, the mean of values [evals, S] at steps in [start, stop] * max(steps) -> [S]."""
    last = max(steps)
    mask = torch.tensor([start * last <= s <= stop * last for s in steps])
    if not bool(mask.any()):
        raise BadInputError(f"no evaluation step in the window [{start}, {stop}] x {last}")
    return values[mask].mean(0)


def gap_summary(
    steps: Sequence[int],
    mc: torch.Tensor,
    rqmc: torch.Tensor,
    reference_elbo: float,
    deltas: Sequence[float],
    never: int,
    plateau_multiple: float = 1.0,
) -> dict:
    """Convergence of MC and RQMC runs measured as the gap to a reference optimum.

    gap_t = ELBO(lambda*) - ELBO(q_t) per run (traces [evals, S]; a non-finite ELBO counts as an
    infinite gap); plateau gap = median over runs of the mean gap over the last 15% of iterations;
    t(delta) = median over runs of the first step with gap <= delta (``never`` if none), reported
    at the fixed ``deltas``. The comparison gap is tied to MC's own noise floor: delta =
    ``plateau_multiple`` x MC's plateau gap (at least 1e-3), the level MC's converged runs fluctuate around,
    its noise floor; speedup = t_MC(delta) / t_RQMC(delta). Plateau gaps are floored at 1e-3 in the
    ratio; ``credible`` says no run's final ELBO exceeds the reference by more than 0.05;
    ``converged`` says a run's median gap fell by at most max(5% of the plateau gap, 0.01 nats)
    between the 60-75% window and the last 15% (a run still descending cannot show its plateau).
    """
    out: dict = {}
    floor = 1e-3
    all_gaps = {}
    for kind, trace in (("mc", mc), ("rqmc", rqmc)):
        gaps = reference_elbo - trace.double()
        all_gaps[kind] = gaps = torch.where(torch.isfinite(gaps), gaps, torch.full_like(gaps, math.inf))
        plateau = window_mean(steps, gaps, 0.85, 1.0)
        hits = {d: float(first_reach(steps, -gaps, -d, never).double().median()) for d in deltas}
        finite = trace[-1][torch.isfinite(trace[-1])]
        late = window_mean(steps, gaps, 0.60, 0.75)
        out[kind] = {
            "plateau_gap": float(plateau.median()),
            "plateau_gap_per_seed": plateau.tolist(),
            "iterations_to_gap": hits,
            "best_final_elbo": float(finite.max()) if len(finite) else -math.inf,
            "converged": bool(float((late - plateau).median()) <= max(0.05 * float(plateau.median()), 0.01)),
        }
    out["plateau_ratio"] = max(out["mc"]["plateau_gap"], floor) / max(out["rqmc"]["plateau_gap"], floor)
    mc_plateau = out["mc"]["plateau_gap"]
    delta = max(plateau_multiple * mc_plateau, floor) if math.isfinite(mc_plateau) else None
    out["delta"] = delta
    if delta is not None:
        t = {k: float(first_reach(steps, -g, -delta, never).double().median()) for k, g in all_gaps.items()}
        out["mc"]["iterations_to_delta"], out["rqmc"]["iterations_to_delta"] = t["mc"], t["rqmc"]
    reached = delta is not None and out["rqmc"]["iterations_to_delta"] < never
    out["speedup"] = (
        out["mc"]["iterations_to_delta"] / max(out["rqmc"]["iterations_to_delta"], 1.0) if reached else float("nan")
    )
    out["credible"] = max(out["mc"]["best_final_elbo"], out["rqmc"]["best_final_elbo"]) <= reference_elbo + 0.05
    out["counts"] = bool(out["plateau_ratio"] >= 2.0 and reached and out["speedup"] >= 1.25)
    out["eligible"] = bool(out["credible"] and out["mc"]["converged"])
    return out
