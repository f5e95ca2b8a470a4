"""Study `qmcvi`: Buchholz, Wenzel, Mandt, "Quasi-Monte Carlo Variational Inference", ICML 2018.

Wiring only: presets, calls of ``etude.vi.experiments``, cached stages (for --resume), plots
and the four claims with criteria fixed here before any run.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from etude.errors import BadInputError
from etude.runtime import load_checkpoint, progress, save_checkpoint
from etude.studies.protocol import Claim, Result, Study
from etude.vi import MODELS, SampleSizeSchedule, make_model
from etude.vi.analysis import gap_summary, loglog_slope
from etude.vi.experiments import (
    compare_training,
    derive_seed,
    evaluation_points,
    largest_curvature,
    reference_optimum,
    schedule_experiment,
    schedule_target,
    variance_by_size,
)
from etude.vi.models import BayesianNeuralNetwork, load_diabetes
from etude.vi.plots import plot_elbo_traces, plot_schedule, plot_variance_ratios
from etude.vi.qmc import QMCBalanceWarning

__all__ = ["QmcviPreset", "QmcviStudy"]

OPTIMIZER_LABELS = {"adam": "Adam", "sgd": "SGD"}


@dataclass(frozen=True)
class QmcviPreset:
    """Sizes of the QMCVI study; every model uses a mean-field Gaussian family."""

    models: tuple[str, ...] = ("linear", "logistic", "hierarchical", "poisson", "bnn")
    """Models (etude.vi.MODELS) for claims 1-3."""
    sizes: tuple[int, ...] = (4, 16, 64, 256)
    """N at which gradient variances are compared (claims 1-2)."""
    replicates: int = 100
    """Independent gradient estimates per sampler and N (BNN: bnn_replicates)."""
    bnn_replicates: int = 32
    """Replicates for the BNN, whose 601 coordinates make its summed variance stable at fewer."""
    bnn_float32: bool = True
    """Run the BNN in float32 (2.5x faster on CPU); the other models run in float64."""
    init_scale: float = 0.1
    """sigma of q at initialization."""
    train_steps: int = 800
    """Iterations per run (claim 3); the trained q of Adam's first MC seed is where 'after training'
    variances are taken."""
    train_n: int = 16
    """N per iteration for both samplers (claim 3)."""
    train_seeds: int = 5
    """Seeds per model, sampler and optimizer (claim 3), run as one batch."""
    lr: float = 0.01
    """Adam step size (claim 3)."""
    sgd_fraction: float = 0.5
    """Constant SGD step = sgd_fraction / max(lambda_max, 2), lambda_max the largest curvature of -log p at
    the initial and reference means (claim 3)."""
    reference_steps: int = 1500
    """RQMC Adam iterations at N = 256 (then half as many at lr / 10) for the reference optimum of
    non-conjugate models (claim 3); the linear model's optimum is exact."""
    convergence_models: tuple[str, ...] = ("linear", "logistic", "hierarchical", "poisson")
    """Models whose convergence is compared with a reference optimum and SGD (claim 3); the others
    (the BNN, whose N = 256 reference run costs more than the rest of the quick preset) run Adam only,
    for the 'after training' variances."""
    deltas: tuple[float, ...] = (1.0, 0.3, 0.1)
    """ELBO gaps to the reference optimum (nats) whose hitting times are reported (claim 3)."""
    eval_points: int = 128
    """Fixed RQMC base points on which every run's ELBO is evaluated (common random numbers)."""
    eval_every: int = 20
    """Iterations between ELBO evaluations."""
    schedule_stop: int = 1024
    """Largest N of the growing schedule 2, 4, ..., schedule_stop (claim 4)."""
    schedule_every: int = 100
    """Iterations per schedule stage."""
    schedule_seeds: int = 4
    """Seeds per sampler for the schedule."""
    schedule_lr: float = 0.02
    """Constant SGD step size for the schedule (the target's largest curvature is about 17.5)."""
    extras: bool = True
    """Also measure side figures: N not a power of two, IWAE gradients."""

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise BadInputError(f"preset models must be among {sorted(MODELS)}, got {list(self.models)}")
        if len(self.sizes) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 2 for n in self.sizes):
            raise BadInputError(f"preset sizes must be at least two ints >= 2, got {list(self.sizes)}")


def _training(
    model: Any, seeds: list[int], preset: QmcviPreset, dtype: torch.dtype, desc: str, lr: float | None = None, **options
) -> Callable[[], dict]:
    """``compare_training`` of ``model`` at the preset's steps, N, init scale and evaluation (``lr`` or the preset's)."""
    return functools.partial(
        compare_training,
        model,
        seeds,
        preset.train_steps,
        preset.train_n,
        preset.lr if lr is None else lr,
        preset.init_scale,
        preset.eval_points,
        preset.eval_every,
        dtype,
        desc=desc,
        **options,
    )


def _variances(
    model: Any,
    name: str,
    init_loc: torch.Tensor,
    trained: tuple[torch.Tensor, torch.Tensor],
    preset: QmcviPreset,
    reps: int,
    seed: int,
    chunk: int,
) -> dict:
    """The gradient variance by sample size at the initial and at the trained (mu, omega) of ``model``."""
    init_log_scale = torch.full_like(init_loc, math.log(preset.init_scale))
    return {
        "init": variance_by_size(
            model, init_loc, init_log_scale, preset.sizes, reps, derive_seed(seed, name, "init"), max_points=chunk
        ),
        "trained": variance_by_size(
            model, *trained, preset.sizes, reps, derive_seed(seed, name, "trained"), max_points=chunk
        ),
    }


def _verdict_note(conclusive: bool, need: str) -> str:
    return "" if conclusive else f"Too small a run to decide: needs {need}."


class QmcviStudy(Study):
    """Gradient variance, convergence and the growing-N schedule of MC vs RQMC variational inference."""

    name = "qmcvi"
    title = "Quasi-Monte Carlo Variational Inference"
    citation = "Buchholz, Wenzel, Mandt. ICML 2018. arXiv:1807.01604"
    threads = 1
    presets = {
        "smoke": QmcviPreset(
            sizes=(4, 16),
            replicates=8,
            bnn_replicates=4,
            train_steps=20,
            train_seeds=2,
            reference_steps=20,
            eval_points=64,
            eval_every=5,
            schedule_stop=8,
            schedule_every=10,
            schedule_seeds=2,
            extras=False,
        ),
        "quick": QmcviPreset(),
        "long": QmcviPreset(
            replicates=300,
            bnn_replicates=100,
            train_steps=3000,
            train_seeds=10,
            convergence_models=("linear", "logistic", "hierarchical", "poisson", "bnn"),
            reference_steps=6000,
            eval_points=512,
            eval_every=50,
            schedule_every=200,
            schedule_seeds=8,
        ),
        "full": QmcviPreset(
            sizes=(4, 16, 64, 256, 1024),
            replicates=1000,
            bnn_replicates=300,
            bnn_float32=False,
            train_steps=5000,
            train_seeds=10,
            reference_steps=10000,
            convergence_models=("linear", "logistic", "hierarchical", "poisson", "bnn"),
            eval_points=1024,
            eval_every=50,
            schedule_stop=4096,
            schedule_every=400,
            schedule_seeds=16,
        ),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim(
                "variance_reduction",
                "RQMC base points lower the variance of the reparameterized ELBO gradient "
                "for every model, at initialization and after training, by orders of magnitude for "
                "low-dimensional models.",
                "paper Sec. 5 (gradient-variance figures): RQMC's variance is orders of magnitude below MC's for "
                "the hierarchical regression, the Poisson GLM and the BNN",
                "ratio > 1 for every model, N and phase; at N = 256 (largest N) at initialization ratio >= 10 for "
                "every model with d <= 105 and >= 2 for the BNN (needs >= 30 replicates, N up to >= 256)",
            ),
            Claim(
                "ratio_grows",
                "The variance ratio grows with N, as RQMC's faster error rate predicts.",
                "paper Sec. 3: RQMC integration error O(N^-1 (log N)^(d-1)) against MC's O(N^-1/2), so the "
                "variance ratio grows about as N",
                "at initialization: least-squares slope of log ratio vs log N >= 0.5 for every model with "
                "d <= 105, and the BNN's ratio at the largest N above its ratio at the smallest N "
                "(needs >= 30 replicates and N spanning >= 16x)",
            ),
            Claim(
                "faster_convergence",
                "At equal N, RQMC comes closer to the optimum than MC and gets within a "
                "given gap of it in fewer iterations, with Adam and with constant-step SGD.",
                "paper Sec. 5 (ELBO against iterations): RQMC converges faster and to a higher ELBO at equal N",
                "gap = ELBO(reference optimum) - ELBO(q_t), both on the same fixed RQMC evaluation points; "
                "reference = exact mean-field optimum (linear) or a long RQMC run at N = 256; plateau gap = "
                "median over seeds of the mean gap over the last 15% of iterations; t(delta) = median iterations "
                "to first reach gap <= delta (delta = 1, 0.3, 0.1 nats). A model counts when MC's plateau gap >= 2x "
                "RQMC's and t_MC / t_RQMC >= 1.25 at the smallest delta RQMC reaches. Holds when a majority of the "
                "eligible models count under Adam and under SGD; eligible = a credible reference (no run's final "
                "ELBO above it by > 0.05) and converged MC runs (median gap falls by <= max(5% of the plateau gap, "
                "0.01) from the 60-75% window to the last 15%) (needs >= 5 seeds, >= 300 iterations, >= 3 eligible models per optimizer)",
            ),
            Claim(
                "growing_n",
                "With a constant step size and N growing geometrically, RQMC's error falls faster in N "
                "than MC's (Sec. 4).",
                "paper Sec. 4 (Theorem: with a constant step and N_t growing geometrically, RQMC's error bound "
                "falls as O(N^-2) against MC's O(N^-1), up to log factors)",
                "squared distance to the exact mean-field optimum of a conjugate linear regression, second half of "
                "each stage, log-log slope over stages after the first: RQMC <= -1.5 and RQMC <= MC - 0.5 "
                "(needs >= 6 stages and >= 4 seeds)",
            ),
        ]

    # -- wiring -------------------------------------------------------------------------------------

    @staticmethod
    def _model(name: str, preset: QmcviPreset):
        if name == "bnn" and preset.bnn_float32:
            return BayesianNeuralNetwork(*load_diabetes(torch.float32))
        return make_model(name)

    @staticmethod
    def _stage(out_dir: Path, key: str, expect: dict, resume: bool, compute: Callable[[], dict]) -> dict:
        """Run one stage, or load it from its checkpoint when resuming the same settings."""
        path = out_dir / "checkpoints" / f"{key}.pt"
        if resume and path.is_file():
            return load_checkpoint(path, expect=expect)["value"]
        value = compute()
        save_checkpoint(path, {**expect, "value": value})
        return value

    def run(self, preset: QmcviPreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        out_dir = Path(out_dir)
        expect = {"study": self.name, "seed": seed, "preset": asdict(preset)}
        seeds = [derive_seed(seed, "seed", i) for i in range(preset.train_seeds)]
        models = {name: self._model(name, preset) for name in preset.models}
        training, variance, convergence = {}, {}, {}
        for name, model in progress(models.items(), desc="qmcvi models", total=len(models)):
            dtype = torch.float32 if name == "bnn" and preset.bnn_float32 else torch.float64
            if name in preset.convergence_models:
                convergence[name] = self._convergence(out_dir, name, model, seeds, expect, resume, preset, seed, dtype)
                training[name] = convergence[name]["adam"]
            else:
                training[name] = self._stage(
                    out_dir,
                    f"train_{name}",
                    expect,
                    resume,
                    _training(model, seeds, preset, dtype, f"adam {name}"),
                )
            reps = preset.bnn_replicates if name == "bnn" else preset.replicates
            chunk = 256 if name == "bnn" else 4096  # base points per batch: the BNN's activations are large
            init_loc = model.initial_loc(torch.Generator().manual_seed(derive_seed(seeds[0], "init"))).to(dtype)
            trained_loc, trained_log_scale = (t[0] for t in training[name]["final_mc"])
            variance[name] = self._stage(
                out_dir,
                f"variance_{name}",
                expect,
                resume,
                functools.partial(
                    _variances, model, name, init_loc, (trained_loc, trained_log_scale), preset, reps, seed, chunk
                ),
            )
        schedule = SampleSizeSchedule(2, preset.schedule_stop, 2.0, preset.schedule_every)
        sched = self._stage(
            out_dir,
            "schedule",
            expect,
            resume,
            lambda: schedule_experiment(
                schedule_target(),
                schedule,
                [derive_seed(seed, "schedule", i) for i in range(preset.schedule_seeds)],
                preset.schedule_lr,
                preset.init_scale,
                desc="schedule",
            ),
        )
        extras = (
            self._stage(out_dir, "extras", expect, resume, lambda: self._extras(preset, seed)) if preset.extras else {}
        )

        claims = {c.id: c for c in self.claims()}
        metrics: dict[str, Any] = {
            "variance": variance,
            "schedule_stages": sched["stages"],
            "schedule_stage_mc": sched["stage_mc"],
            "schedule_stage_rqmc": sched["stage_rqmc"],
            "extras": extras,
        }
        self._decide_variance(claims, variance, {n: m.dim for n, m in models.items()}, preset, metrics)
        self._decide_convergence(claims["faster_convergence"], convergence, preset, metrics)
        self._decide_schedule(claims["growing_n"], sched, preset, metrics)
        artifacts = [
            plot_variance_ratios(
                {m: {p: variance[m][p]["ratio"] for p in ("init", "trained")} for m in variance},
                list(preset.sizes),
                out_dir / "variance_ratio.png",
            ),
            plot_elbo_traces(
                {m: {k: training[m][k] for k in ("mc", "rqmc")} for m in training},
                training[next(iter(training))]["steps"],
                out_dir / "elbo_traces.png",
                preset.train_n,
            ),
            plot_schedule(
                {k: sched[f"errors_{k}"] for k in ("mc", "rqmc")},
                sched["sizes"],
                sched["stages"],
                {k: sched[f"stage_{k}"] for k in ("mc", "rqmc")},
                out_dir / "schedule.png",
            ),
        ]
        return Result(
            self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=[p.name for p in artifacts]
        )

    def _convergence(
        self,
        out_dir: Path,
        name: str,
        model,
        seeds: list[int],
        expect: dict,
        resume: bool,
        preset: QmcviPreset,
        seed: int,
        dtype: torch.dtype,
    ) -> dict:
        """Claim 3's stages for one model: reference optimum, Adam runs, constant-step SGD runs."""
        eval_eps = evaluation_points(model, seeds[0], preset.eval_points, dtype)
        reference = self._stage(
            out_dir,
            f"reference_{name}",
            expect,
            resume,
            lambda: reference_optimum(
                model,
                eval_eps,
                preset.reference_steps,
                preset.lr,
                preset.init_scale,
                derive_seed(seed, name, "reference"),
                desc=f"reference {name}",
            ),
        )
        adam = self._stage(
            out_dir,
            f"train_{name}",
            expect,
            resume,
            _training(model, seeds, preset, dtype, f"adam {name}", eval_eps=eval_eps),
        )
        init_loc = model.initial_loc(torch.Generator().manual_seed(derive_seed(seeds[0], "init"))).to(dtype)
        curvature = max(abs(largest_curvature(model, init_loc)), abs(largest_curvature(model, reference["loc"])))
        sgd_lr = preset.sgd_fraction / max(curvature, 2.0)
        sgd = self._stage(
            out_dir,
            f"sgd_{name}",
            expect,
            resume,
            _training(model, seeds, preset, dtype, f"sgd {name}", lr=sgd_lr, optimizer="sgd", eval_eps=eval_eps),
        )
        return {"reference": reference, "adam": adam, "sgd": sgd, "sgd_lr": sgd_lr, "curvature": curvature}

    @staticmethod
    def _extras(preset: QmcviPreset, seed: int) -> dict:
        """Side figures: N = 15, 16, 17 (balance) and IWAE gradients, linear and logistic models."""
        out = {}
        for name in ("linear", "logistic"):
            model = make_model(name)
            loc, log_scale = (
                model.initial_loc(),
                torch.full((model.dim,), math.log(preset.init_scale), dtype=torch.float64),
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", QMCBalanceWarning)  # N = 15, 17 on purpose
                balance = variance_by_size(
                    model, loc, log_scale, (15, 16, 17), preset.replicates, derive_seed(seed, name, "balance")
                )
            iw = variance_by_size(
                model, loc, log_scale, (16,), preset.replicates, derive_seed(seed, name, "iwae"), objective="iwae"
            )
            out[name] = {"ratio_n15_16_17": balance["ratio"], "iwae_ratio_k16": iw["ratio"][0]}
        return out

    # -- verdicts (criteria as stated in claims()) --------------------------------------------------

    @staticmethod
    def _decide_variance(
        claims: dict[str, Claim], variance: dict, dims: dict[str, int], preset: QmcviPreset, metrics: dict
    ) -> None:
        sizes = list(preset.sizes)
        enough_reps = min(preset.replicates, preset.bnn_replicates if "bnn" in variance else preset.replicates) >= 30
        lines, all_above_one, big_enough = [], True, True
        slopes, grows = {}, True
        for name, phases in variance.items():
            dim = dims[name]
            init, trained = phases["init"]["ratio"], phases["trained"]["ratio"]
            all_above_one &= min(init + trained) > 1.0
            big_enough &= init[-1] >= (10.0 if dim <= 105 else 2.0)
            slopes[name] = loglog_slope(sizes, init)
            if dim <= 105:
                grows &= slopes[name] >= 0.5
            else:
                grows &= init[-1] > init[0]
            lines.append(
                f"{name} (d={dim}): init "
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
        sizes_text = "/".join(map(str, sizes))
        header = (
            "| model | d | q | " + " | ".join(f"N = {n}" for n in sizes) + " |\n|---|---|---|" + "---|" * len(sizes)
        )
        rows = [
            f"| {name} | {dims[name]} | {phase} | "
            + " | ".join(
                f"{r:.3g} (x/ {math.exp(se):.2f})" for r, se in zip(phases[phase]["ratio"], phases[phase]["log_se"])
            )
            + " |"
            for name, phases in variance.items()
            for phase in ("init", "trained")
        ]
        metrics["variance_table"] = (
            "MC/RQMC ratio of tr Var of the ELBO gradient (mean-field q; init: sigma = 0.1; "
            "trained: after the first seed's MC Adam run; x/ = one standard error factor):\n\n"
            + header
            + "\n"
            + "\n".join(rows)
        )
        metrics["ratio_slopes_init"] = slopes
        metrics["ratio_slopes_trained"] = {m: loglog_slope(sizes, p["trained"]["ratio"]) for m, p in variance.items()}
        claims["variance_reduction"].decide(
            f"MC/RQMC at N = {sizes_text}: " + "; ".join(lines),
            all_above_one and big_enough,
            conclusive=enough_reps and max(sizes) >= 256,
            note=_verdict_note(enough_reps and max(sizes) >= 256, ">= 30 replicates and N up to >= 256") + weak_note,
        )
        span = max(sizes) / min(sizes) >= 16 and len(sizes) >= 3
        claims["ratio_grows"].decide(
            "slope of log ratio vs log N at init: "
            + ", ".join(f"{m} {s:.2f}" for m, s in slopes.items())
            + "; after training: "
            + ", ".join(f"{m} {s:.2f}" for m, s in metrics["ratio_slopes_trained"].items()),
            grows,
            conclusive=enough_reps and span,
            note=_verdict_note(enough_reps and span, ">= 30 replicates and >= 3 N spanning >= 16x"),
        )

    def _decide_convergence(self, claim: Claim, convergence: dict, preset: QmcviPreset, metrics: dict) -> None:
        never = preset.train_steps + preset.eval_every
        summary: dict = {}
        lines, holds, eligible_models = [], True, None
        for opt in ("adam", "sgd"):
            parts, counted, eligible = [], 0, 0
            for name, c in convergence.items():
                s = gap_summary(
                    c[opt]["steps"], c[opt]["mc"], c[opt]["rqmc"], c["reference"]["elbo"], tuple(preset.deltas), never
                )
                summary.setdefault(
                    name,
                    {
                        "reference_elbo": c["reference"]["elbo"],
                        "reference_exact": c["reference"]["exact"],
                        "sgd_lr": c["sgd_lr"],
                    },
                )[opt] = s
                eligible += s["eligible"]
                counted += s["eligible"] and s["counts"]
                hit = (
                    "never"
                    if s["delta"] is None
                    else f"t({s['delta']:g}) MC {s['mc']['iterations_to_gap'][s['delta']]:.0f} / RQMC "
                    f"{s['rqmc']['iterations_to_gap'][s['delta']]:.0f} (x{s['speedup']:.2f})"
                )
                parts.append(
                    f"{name}: plateau gap MC {s['mc']['plateau_gap']:.3g} / RQMC {s['rqmc']['plateau_gap']:.3g}"
                    f" (x{s['plateau_ratio']:.1f}), {hit}"
                    + ("" if s["credible"] else " [reference not credible]")
                    + ("" if s["mc"]["converged"] else " [MC not converged]")
                )
            holds &= counted > eligible / 2
            eligible_models = eligible if eligible_models is None else min(eligible_models, eligible)
            lines.append(
                f"{OPTIMIZER_LABELS[opt]}: " + "; ".join(parts) + f" -> {counted} of {eligible} eligible models count"
            )
        metrics["convergence"] = summary
        conclusive = preset.train_seeds >= 5 and preset.train_steps >= 300 and (eligible_models or 0) >= 3
        claim.decide(
            f"N = {preset.train_n}, gaps in nats to the reference optimum's ELBO. " + " | ".join(lines),
            holds,
            conclusive=conclusive,
            note=_verdict_note(conclusive, ">= 5 seeds, >= 300 iterations, >= 3 eligible models per optimizer")
            + f" Adam lr {preset.lr}; SGD step {preset.sgd_fraction} / max(lambda_max, 2) per model ("
            + ", ".join(f"{n} {c['sgd_lr']:.2g}" for n, c in convergence.items())
            + f"); mean-field, sigma_0 = {preset.init_scale}, {preset.train_seeds} seeds; the linear model's "
            "reference is exact, the others' a long RQMC run at N = 256.",
        )

    @staticmethod
    def _decide_schedule(claim: Claim, sched: dict, preset: QmcviPreset, metrics: dict) -> None:
        stages = sched["stages"]
        slope_mc = loglog_slope(stages[1:], sched["stage_mc"][1:]) if len(stages) > 2 else float("nan")
        slope_rq = loglog_slope(stages[1:], sched["stage_rqmc"][1:]) if len(stages) > 2 else float("nan")
        metrics.update(schedule_slope_mc=slope_mc, schedule_slope_rqmc=slope_rq)
        side = ""
        if 16 in stages and 128 in stages:
            e16, e128 = sched["stage_rqmc"][stages.index(16)], sched["stage_mc"][stages.index(128)]
            side = f"; RQMC at N = 16 {e16:.2e} vs MC at N = 128 {e128:.2e}"
        conclusive = len(stages) >= 6 and preset.schedule_seeds >= 4
        claim.decide(
            f"error-vs-N slope MC {slope_mc:.2f}, RQMC {slope_rq:.2f} over N = {stages[1]}..{stages[-1]}{side}",
            slope_rq <= -1.5 and slope_rq <= slope_mc - 0.5,
            conclusive=conclusive,
            note=_verdict_note(conclusive, ">= 6 stages and >= 4 seeds")
            + f" SGD step {preset.schedule_lr}, {preset.schedule_every} iterations per stage.",
        )
