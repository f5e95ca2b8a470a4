"""Decision rules of the qmcvi study's claims (Buchholz, Wenzel, Mandt, ICML 2018, arXiv:1807.01604).

Each rule is a pure function from measured numbers to the keyword arguments of ``Claim.decide``
(``measured``, ``holds``, ``conclusive``, ``note``), with the figures it derives for result.json
where it derives any; the thresholds are fixed here, before any run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from etude.vi.analysis import gap_summary, loglog_slope

__all__ = ["MIN_REPLICATES", "convergence", "growing_n", "variance"]

MIN_REPLICATES = 30
"""Gradient replicates per sampler and N the variance claims need."""
OPTIMIZER_LABELS = {"adam": "Adam", "sgd": "SGD"}


def _verdict_note(conclusive: bool, need: str) -> str:
    return "" if conclusive else f"Too small a run to decide: needs {need}."


def _variance_table(variance: Mapping, dims: Mapping[str, int], sizes: Sequence[int]) -> str:
    header = "| model | d | q | " + " | ".join(f"N = {n}" for n in sizes) + " |\n|---|---|---|" + "---|" * len(sizes)
    rows = [
        f"| {name} | {dims[name]} | {phase} | "
        + " | ".join(
            f"{r:.3g} (x/ {math.exp(se):.2f})" for r, se in zip(phases[phase]["ratio"], phases[phase]["log_se"])
        )
        + " |"
        for name, phases in variance.items()
        for phase in ("init", "trained")
    ]
    return (
        "MC/RQMC ratio of tr Var of the ELBO gradient (mean-field q; init: sigma = 0.1; "
        "trained: after the first seed's MC Adam run; x/ = one standard error factor):\n\n"
        + header
        + "\n"
        + "\n".join(rows)
    )


def variance(
    variance: Mapping, dims: Mapping[str, int], sizes: Sequence[int], replicates: int
) -> tuple[dict, dict, dict]:
    """Claims 1 and 2 from {model: {'init'|'trained': {'ratio': [...], 'log_se': [...]}}} (MC/RQMC by N).

    variance_reduction: ratio > 1 for every model, N and phase; at the largest N at initialization
    >= 10 for d <= 105 and >= 2 above. ratio_grows: at initialization the log-log slope of the ratio
    in N >= 0.5 for d <= 105, and the ratio at the largest N above the smallest N above.
    :returns: (variance_reduction decision, ratio_grows decision, figures for result.json).
    """
    sizes = list(sizes)
    enough = replicates >= MIN_REPLICATES
    lines, above_one, big_enough, grows, slopes = [], True, True, True, {}
    for name, phases in variance.items():
        init, trained = phases["init"]["ratio"], phases["trained"]["ratio"]
        small = dims[name] <= 105
        above_one &= min(init + trained) > 1.0
        big_enough &= init[-1] >= (10.0 if small else 2.0)
        slopes[name] = loglog_slope(sizes, init)
        grows &= slopes[name] >= 0.5 if small else init[-1] > init[0]
        lines.append(
            f"{name} (d={dims[name]}): init "
            + "/".join(f"{r:.3g}" for r in init)
            + "; trained "
            + "/".join(f"{r:.3g}" for r in trained)
        )
    weak = [
        f"{name} {phase} N={n}"
        for name, phases in variance.items()
        for phase in ("init", "trained")
        for n, r, se in zip(sizes, phases[phase]["ratio"], phases[phase]["log_se"])
        if r * math.exp(-2 * se) <= 1.0
    ]
    weak_note = (
        " Not significantly above 1 (ratio / e^(2 SE of log ratio) <= 1): " + ", ".join(weak) + "." if weak else ""
    )
    trained_slopes = {m: loglog_slope(sizes, p["trained"]["ratio"]) for m, p in variance.items()}
    figures = {
        "variance_table": _variance_table(variance, dims, sizes),
        "ratio_slopes_init": slopes,
        "ratio_slopes_trained": trained_slopes,
    }
    wide = enough and max(sizes) >= 256
    reduction = {
        "measured": f"MC/RQMC at N = {'/'.join(map(str, sizes))}: " + "; ".join(lines),
        "holds": above_one and big_enough,
        "conclusive": wide,
        "note": _verdict_note(wide, ">= 30 replicates and N up to >= 256") + weak_note,
    }
    span = enough and max(sizes) / min(sizes) >= 16 and len(sizes) >= 3
    growth = {
        "measured": "slope of log ratio vs log N at init: "
        + ", ".join(f"{m} {s:.2f}" for m, s in slopes.items())
        + "; after training: "
        + ", ".join(f"{m} {s:.2f}" for m, s in trained_slopes.items()),
        "holds": grows,
        "conclusive": span,
        "note": _verdict_note(span, ">= 30 replicates and >= 3 N spanning >= 16x"),
    }
    return reduction, growth, figures


def convergence(
    runs: Mapping[str, Mapping], deltas: Sequence[float], seeds: int, min_steps: int, n: int
) -> tuple[dict, dict]:
    """Claim 3 from {model: {'reference': {'elbo', 'exact'}, 'adam'|'sgd': traces, 'sgd_lr', 'sgd_steps'}}.

    Per model and optimizer, `gap_summary`: a model counts when MC's plateau gap >= 2x RQMC's and
    t_MC / t_RQMC >= 1.25 at a gap equal to MC's own plateau gap; eligible = a credible reference and
    converged MC runs. Holds when a majority of the eligible models count under Adam and under SGD;
    conclusive with >= 5 seeds, >= 300 iterations and >= 3 eligible models per optimizer.
    :returns: (decision, per-model summaries for result.json).
    """
    summary: dict = {}
    lines, holds, fewest = [], True, None
    for opt in ("adam", "sgd"):
        parts, counted, eligible = [], 0, 0
        for name, c in runs.items():
            r = c[opt]
            s = gap_summary(r["steps"], r["mc"], r["rqmc"], c["reference"]["elbo"], tuple(deltas), max(r["steps"]) + 1)
            entry = summary.setdefault(
                name,
                {
                    "reference_elbo": c["reference"]["elbo"],
                    "reference_exact": c["reference"]["exact"],
                    "sgd_lr": c["sgd_lr"],
                },
            )
            entry[opt] = s
            eligible += s["eligible"]
            counted += s["eligible"] and s["counts"]
            hit = (
                "never"
                if s["delta"] is None or not math.isfinite(s["speedup"])
                else f"t({s['delta']:.3g} = MC plateau) MC {s['mc']['iterations_to_delta']:.0f} / RQMC "
                f"{s['rqmc']['iterations_to_delta']:.0f} (x{s['speedup']:.2f})"
            )
            parts.append(
                f"{name} ({max(r['steps'])} it.): plateau gap MC {s['mc']['plateau_gap']:.3g} / RQMC "
                f"{s['rqmc']['plateau_gap']:.3g} (x{s['plateau_ratio']:.1f}), {hit}"
                + ("" if s["credible"] else " [reference not credible]")
                + ("" if s["mc"]["converged"] else " [MC not converged]")
            )
        holds &= counted > eligible / 2
        fewest = eligible if fewest is None else min(fewest, eligible)
        lines.append(
            f"{OPTIMIZER_LABELS[opt]}: " + "; ".join(parts) + f" -> {counted} of {eligible} eligible models count"
        )
    conclusive = seeds >= 5 and min_steps >= 300 and (fewest or 0) >= 3
    decision = {
        "measured": f"N = {n}, gaps in nats to the reference optimum's ELBO. " + " | ".join(lines),
        "holds": bool(holds),
        "conclusive": conclusive,
        "note": _verdict_note(conclusive, ">= 5 seeds, >= 300 iterations, >= 3 eligible models per optimizer"),
    }
    return decision, summary


def growing_n(
    stages: Sequence[int], stage_mc: Sequence[float], stage_rqmc: Sequence[float], seeds: int
) -> tuple[dict, dict]:
    """Claim 4: log-log slope of the error over stages after the first: RQMC <= -1.5 and <= MC's - 0.5
    (needs >= 6 stages and >= 4 seeds). :returns: (decision, slopes for result.json)."""
    stages = list(stages)
    slope_mc = loglog_slope(stages[1:], stage_mc[1:]) if len(stages) > 2 else float("nan")
    slope_rq = loglog_slope(stages[1:], stage_rqmc[1:]) if len(stages) > 2 else float("nan")
    side = ""
    if 16 in stages and 128 in stages:
        e16, e128 = stage_rqmc[stages.index(16)], stage_mc[stages.index(128)]
        side = f"; RQMC at N = 16 {e16:.2e} vs MC at N = 128 {e128:.2e}"
    conclusive = len(stages) >= 6 and seeds >= 4
    decision = {
        "measured": f"error-vs-N slope MC {slope_mc:.2f}, RQMC {slope_rq:.2f} over N = {stages[1]}..{stages[-1]}{side}",
        "holds": bool(slope_rq <= -1.5 and slope_rq <= slope_mc - 0.5),
        "conclusive": conclusive,
        "note": _verdict_note(conclusive, ">= 6 stages and >= 4 seeds"),
    }
    return decision, {"schedule_slope_mc": slope_mc, "schedule_slope_rqmc": slope_rq}
