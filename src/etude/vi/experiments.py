"""The paper's three experiments as functions that return plain data (tensors, floats, lists).

Buchholz, Wenzel, Mandt, ICML 2018 (arXiv:1807.01604), Sec. 5: (a) gradient variance of MC
against RQMC estimators at several N; (b) ELBO over iterations of Adam with MC or RQMC base
points at equal N; (c) Sec. 4's scheme: constant step size while N grows. The ``qmcvi`` study and
the benchmarks call these; every random draw is seeded from the ``seed`` arguments.
"""

from __future__ import annotations

import functools
import math
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from etude.errors import CheckpointError
from etude.runtime import load_checkpoint, progress, save_checkpoint
from etude.vi import make_model
from etude.vi.analysis import variance_ratio
from etude.vi.elbo import SampleSizeSchedule, gradient_replicates
from etude.vi.families import MeanFieldGaussian
from etude.vi.models import BayesianLinearRegression, BayesianNeuralNetwork, Model, load_diabetes
from etude.vi.qmc import RQMC, QMCBalanceWarning, make_sampler
from etude.vi.train import evaluate_elbo, fit

__all__ = [
    "derive_seed",
    "mean_field",
    "variance_by_size",
    "compare_training",
    "evaluation_points",
    "reference_optimum",
    "largest_curvature",
    "smallest_curvature",
    "sgd_steps",
    "Sizes",
    "Stages",
    "model_runs",
    "extras",
    "schedule_run",
    "schedule_target",
    "schedule_experiment",
]


def derive_seed(seed: int, *keys: object) -> int:
    """A seed for one part of an experiment, fixed by the run's seed and the part's keys."""
    return (seed * 1_000_003 + zlib.crc32(repr(keys).encode())) % 2**62


def mean_field(loc: torch.Tensor, log_scale: torch.Tensor) -> MeanFieldGaussian:
    """The mean-field family at (mu, omega); [S, d] inputs give a family batched over S seeds."""
    if loc.dim() == 1:
        return MeanFieldGaussian(loc.shape[0], loc=loc, scale=log_scale.exp(), dtype=loc.dtype)
    family = MeanFieldGaussian(loc.shape[-1], dtype=loc.dtype).replicate(loc.shape[0])
    with torch.no_grad():
        family.loc.copy_(loc)
        family.log_scale.copy_(log_scale)
    return family


def variance_by_size(
    model: Model,
    loc: torch.Tensor,
    log_scale: torch.Tensor,
    sizes: Sequence[int],
    replicates: int,
    seed: int,
    objective: str = "elbo",
    max_points: int = 4096,
) -> dict:
    """tr Var of MC and RQMC gradient estimators at q = N(loc, exp(log_scale)^2) for each N.

    :returns: {'sizes', 'mc', 'rqmc' (trace variances), 'ratio' (MC / RQMC), 'log_se' (of the ratio)}.
    """
    family = mean_field(loc, log_scale)
    out: dict = {"sizes": list(sizes), "mc": [], "rqmc": [], "ratio": [], "log_se": []}
    for n in sizes:
        grads = {
            kind: gradient_replicates(
                model,
                family,
                make_sampler(kind, model.dim, derive_seed(seed, kind, n)),
                n,
                replicates,
                max_points=max_points,
                objective=objective,
            )
            for kind in ("mc", "rqmc")
        }
        ratio, log_se = variance_ratio(grads["mc"], grads["rqmc"])
        out["mc"].append(float(grads["mc"].var(0).sum()))
        out["rqmc"].append(float(grads["rqmc"].var(0).sum()))
        out["ratio"].append(ratio)
        out["log_se"].append(log_se)
    return out


def evaluation_points(model: Model, seed: int, points: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The fixed RQMC base normals [points, d] on which every run's ELBO is evaluated (common random numbers)."""
    return RQMC(model.dim, seed=derive_seed(seed, "eval")).normal(points, dtype)


def reference_optimum(
    model: Model,
    eval_eps: torch.Tensor,
    steps: int,
    lr: float,
    init_scale: float,
    seed: int,
    n: int = 256,
    desc: str = "",
) -> dict:
    """The mean-field optimum lambda* = (mu*, omega*) that convergence is measured against, and its ELBO on eval_eps.

    Exact for a conjugate model (``mean_field_optimum``); otherwise a long RQMC run at N = ``n``:
    Adam for ``steps`` iterations at ``lr``, then ``steps // 2`` at lr / 10.
    :returns: {'loc' [d], 'log_scale' [d], 'elbo' (on eval_eps), 'exact' (bool)}.
    """
    dtype = eval_eps.dtype
    if hasattr(model, "mean_field_optimum"):
        mu, sigma = model.mean_field_optimum()
        family, exact = mean_field(mu.to(dtype), sigma.log().to(dtype)), True
    else:
        loc = model.initial_loc(torch.Generator().manual_seed(derive_seed(seed, "init"))).to(dtype)
        family, exact = mean_field(loc, torch.full_like(loc, init_scale).log()), False
        sampler = make_sampler("rqmc", model.dim, derive_seed(seed, "reference"))
        for rate, count in ((lr, steps), (lr / 10, max(1, steps // 2))):
            fit(model, family, sampler, count, n, optimizer="adam", lr=rate, desc=desc)
    elbo = float(evaluate_elbo(model, family, eval_eps).reshape(-1)[0])
    return {
        "loc": family.loc.detach().clone(),
        "log_scale": family.log_scale.detach().clone(),
        "elbo": elbo,
        "exact": exact,
    }


def largest_curvature(model: Model, loc: torch.Tensor, iterations: int = 30, seed: int = 0) -> float:
    """lambda_max of -Hessian of log p(z) at z = loc, by power iteration on Hessian-vector products.

    Sets a stable constant SGD step for the ELBO's mean parameters (step < 2 / lambda_max).
    """
    z = loc.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(z), z, create_graph=True)
    v = torch.randn(loc.shape, generator=torch.Generator().manual_seed(seed), dtype=loc.dtype)
    v = v / v.norm()
    value = 0.0
    for _ in range(iterations):
        (hv,) = torch.autograd.grad(grad, z, grad_outputs=-v, retain_graph=True)
        value = float(v @ hv)
        v = hv / hv.norm().clamp_min(1e-300)
    return value


def smallest_curvature(model: Model, loc: torch.Tensor) -> float:
    """lambda_min of -Hessian of log p(z) at z = loc, from the full Hessian (d Hessian-vector products) and
    its eigenvalues: negative where the Hessian is indefinite (e.g. the hierarchical model at 0).

    Sets the run length of constant-step SGD: the slowest direction relaxes as exp(-eta lambda_min t).
    """
    z = loc.detach().clone()
    hessian = torch.autograd.functional.hessian(lambda x: -model(x), z)
    return float(torch.linalg.eigvalsh((hessian + hessian.T) / 2)[0])


def sgd_steps(base: int, eta: float, lambda_min: float, relaxation: float, cap: int) -> int:
    """Iterations of constant-step SGD: ``relaxation`` time constants 1 / (eta lambda_min) of the slowest
    direction, at least ``base`` and at most ``cap``; ``base`` when relaxation is 0 or lambda_min <= 0 (an
    indefinite Hessian at the reference, as a non-convex model may have, bounds no time)."""
    if relaxation <= 0 or not lambda_min > 0:
        return base
    return max(base, min(cap, math.ceil(relaxation / (eta * lambda_min))))


def compare_training(
    model: Model,
    seeds: Sequence[int],
    steps: int,
    n: int,
    lr: float,
    init_scale: float,
    eval_points: int,
    eval_every: int,
    dtype: torch.dtype = torch.float64,
    desc: str = "",
    optimizer: str = "adam",
    eval_eps: torch.Tensor | None = None,
) -> dict:
    """Adam (or constant-step SGD) on the ELBO with MC and with RQMC base points, same N, same
    initializations per seed.

    The ELBO is evaluated every ``eval_every`` steps on one fixed set of ``eval_points`` RQMC base
    points shared by every run (common random numbers; ``eval_eps`` when given), so traces differ
    only by the runs.
    :returns: {'steps': eval steps, 'mc'/'rqmc': eval ELBO [evals, S],
               'final_mc'/'final_rqmc': (loc [S, d], log_scale [S, d]) after training}.
    """
    locs = torch.stack([model.initial_loc(torch.Generator().manual_seed(derive_seed(s, "init"))) for s in seeds])
    if eval_eps is None:
        eval_eps = evaluation_points(model, seeds[0], eval_points, dtype)
    out: dict = {}
    for kind in ("mc", "rqmc"):
        family = mean_field(locs.to(dtype), torch.full_like(locs, init_scale).log().to(dtype))
        samplers = [make_sampler(kind, model.dim, derive_seed(s, "train", kind)) for s in seeds]
        history = fit(
            model,
            family,
            samplers,
            steps,
            n,
            optimizer=optimizer,
            lr=lr,
            eval_eps=eval_eps,
            eval_every=eval_every,
            desc=f"{desc} {kind}" if desc else "",
        )
        out["steps"] = history.eval_steps
        out[kind] = history.eval_elbo
        out[f"final_{kind}"] = (family.loc.detach().clone(), family.log_scale.detach().clone())
    return out


def schedule_target(
    data_seed: int = 0, rows: int = 100, features: int = 10, noise_scale: float = 3.0
) -> BayesianLinearRegression:
    """A well-conditioned conjugate linear regression (x ~ N(0, I), y = x w + 0.5 + noise).

    With 100 rows and noise scale 3 the posterior precision has eigenvalues of about 8 to 18.
    """
    gen = torch.Generator().manual_seed(data_seed)
    x = torch.randn(rows, features, generator=gen, dtype=torch.float64)
    w = torch.randn(features, generator=gen, dtype=torch.float64)
    y = x @ w + 0.5 + noise_scale * torch.randn(rows, generator=gen, dtype=torch.float64)
    return BayesianLinearRegression(x, y, noise_scale=noise_scale)


def schedule_experiment(
    model: BayesianLinearRegression,
    schedule: SampleSizeSchedule,
    seeds: Sequence[int],
    lr: float,
    init_scale: float,
    desc: str = "",
) -> dict:
    """Constant-step SGD on the ELBO while N follows ``schedule``, MC against RQMC (Sec. 4).

    The error is ||lambda_t - lambda*||^2 with lambda = (mu, omega) and lambda* the exact
    mean-field optimum of the conjugate model.
    :returns: {'sizes': N per step, 'stages': N per stage, 'errors_mc'/'errors_rqmc': [steps + 1, S],
               'stage_mc'/'stage_rqmc': error per stage, mean over seeds of its second half}.
    """
    mu_star, sigma_star = model.mean_field_optimum()
    optimum = torch.cat([mu_star, sigma_star.log()])
    steps, stages = schedule.iterations(), schedule.stages()
    out: dict = {"stages": stages}
    for kind in ("mc", "rqmc"):
        family = MeanFieldGaussian(model.dim, scale=init_scale).replicate(len(seeds))
        samplers = [make_sampler(kind, model.dim, derive_seed(s, "schedule", kind)) for s in seeds]
        history = fit(
            model,
            family,
            samplers,
            steps,
            schedule,
            optimizer="sgd",
            lr=lr,
            track=lambda f: ((f.flat_parameters() - optimum) ** 2).sum(-1),
            desc=f"{desc} {kind}" if desc else "",
        )
        errors = history.tracked  # [steps + 1, S]; row t is after t steps
        assert errors is not None  # fit was given track=
        out["sizes"] = history.sizes
        out[f"errors_{kind}"] = errors
        stage_errors = []
        for size in stages:  # the steps run at this N, second half: errors after those steps
            rows = [t + 1 for t, s in enumerate(history.sizes) if s == size]
            stage_errors.append(float(errors[rows[len(rows) // 2 :]].mean()))
        out[f"stage_{kind}"] = stage_errors
    return out


class Sizes(Protocol):
    """The sizes the study's experiments read (`etude.vi.study.QmcviPreset` has them)."""

    @property
    def sizes(self) -> tuple[int, ...]: ...
    @property
    def replicates(self) -> int: ...
    @property
    def bnn_replicates(self) -> int: ...
    @property
    def bnn_float32(self) -> bool: ...
    @property
    def init_scale(self) -> float: ...
    @property
    def train_steps(self) -> int: ...
    @property
    def train_n(self) -> int: ...
    @property
    def train_seeds(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def sgd_fraction(self) -> float: ...
    @property
    def sgd_relaxation(self) -> float: ...
    @property
    def sgd_max_steps(self) -> int: ...
    @property
    def sgd_relaxed_models(self) -> tuple[str, ...]: ...
    @property
    def reference_steps(self) -> int: ...
    @property
    def convergence_models(self) -> tuple[str, ...]: ...
    @property
    def eval_points(self) -> int: ...
    @property
    def eval_every(self) -> int: ...
    @property
    def schedule_stop(self) -> int: ...
    @property
    def schedule_every(self) -> int: ...
    @property
    def schedule_seeds(self) -> int: ...
    @property
    def schedule_lr(self) -> float: ...


class Stages:
    """Runs each named stage once and checkpoints its value; with ``resume`` a stage run with the same
    settings (``expect``) is loaded instead of recomputed, after checking that its value fits the run:
    the ``like`` template where a stage gives one (``etude.runtime.load_checkpoint``: keys, lengths,
    tensor shapes and dtypes), and always numbers, bools and floating tensors (of ``dtype`` where given)
    as its leaves, so that a stored value with a valid hash but the wrong content is a one-line
    ``CheckpointError``, not a crash or a silently different result."""

    def __init__(self, out_dir: Path, expect: dict, resume: bool) -> None:
        self.out_dir, self.expect, self.resume = Path(out_dir), expect, resume

    def __call__(self, key: str, compute: Callable[[], Any], like: Any = None, dtype: torch.dtype | None = None) -> Any:
        path = self.out_dir / "checkpoints" / f"{key}.pt"
        if self.resume and path.is_file():
            value = load_checkpoint(path, expect=self.expect, like=None if like is None else {"value": like})["value"]
            misfit = _leaf_misfit(value, "value", dtype)
            if misfit is not None:
                raise CheckpointError(
                    f"checkpoint {path} does not fit this run: {misfit}; delete it or run without --resume"
                )
            return value
        value = compute()
        save_checkpoint(path, {**self.expect, "value": value})
        return value


def _leaf_misfit(value: Any, where: str, dtype: torch.dtype | None) -> str | None:
    """Why ``value`` is not a stage value (dicts and lists of numbers, bools and floating tensors of
    ``dtype``), or None."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() or (dtype is not None and value.dtype != dtype):
            return f"{where} is a {str(value.dtype).removeprefix('torch.')} tensor, expected {dtype or 'a float one'}"
        return None
    if isinstance(value, dict):
        return next((m for k, v in value.items() if (m := _leaf_misfit(v, f"{where}.{k}", dtype))), None)
    if isinstance(value, (list, tuple)):
        return next((m for i, v in enumerate(value) if (m := _leaf_misfit(v, f"{where}[{i}]", dtype))), None)
    if isinstance(value, (int, float)):  # bool included
        return None
    return f"{where} is a {type(value).__name__}, expected a number"


def _training_like(model: Model, seeds: Sequence[int], steps: int, every: int, dtype: torch.dtype) -> dict:
    """What ``compare_training`` returns, as a ``load_checkpoint`` template: evaluations at steps 0,
    every, 2 every, ... and the last step, per seed; the final (loc, log_scale) per seed."""
    evals, s = len(range(0, steps + 1, every)) + (steps % every != 0), len(seeds)
    final = (torch.zeros(s, model.dim, dtype=dtype), torch.zeros(s, model.dim, dtype=dtype))
    trace = torch.zeros(evals, s, dtype=dtype)
    return {"steps": [int] * evals, "mc": trace, "rqmc": trace, "final_mc": final, "final_rqmc": final}


def _model(name: str, p: Sizes) -> Model:
    if name == "bnn" and p.bnn_float32:
        return BayesianNeuralNetwork(*load_diabetes(torch.float32))
    return make_model(name)


def _training(
    model: Model, seeds: list[int], p: Sizes, dtype: torch.dtype, desc: str, lr: float | None = None, **options: Any
) -> Callable[[], dict]:
    """``compare_training`` of ``model`` at the preset's steps, N, init scale and evaluation (``lr`` or the preset's)."""
    steps = options.pop("steps", p.train_steps)
    every = options.pop("eval_every", p.eval_every)
    return functools.partial(
        compare_training,
        model,
        seeds,
        steps,
        p.train_n,
        p.lr if lr is None else lr,
        p.init_scale,
        p.eval_points,
        every,
        dtype,
        desc=desc,
        **options,
    )


def _train_stage(
    stage: Stages,
    key: str,
    model: Model,
    seeds: list[int],
    p: Sizes,
    dtype: torch.dtype,
    desc: str,
    lr: float | None = None,
    **options: Any,
) -> dict:
    """The stage ``key`` running ``_training``, checked on resume against what ``compare_training`` returns."""
    like = _training_like(
        model, seeds, options.get("steps", p.train_steps), options.get("eval_every", p.eval_every), dtype
    )
    return stage(key, _training(model, seeds, p, dtype, desc, lr, **options), like=like, dtype=dtype)


def _convergence(
    model: Model, name: str, seeds: list[int], p: Sizes, seed: int, dtype: torch.dtype, stage: Stages
) -> dict:
    """Claim 3's stages for one model: reference optimum, Adam runs, constant-step SGD runs.

    SGD's step is sgd_fraction / max(lambda_max, 2) (lambda_max the larger at the initial and reference
    means); its run length `sgd_steps` from lambda_min at the reference mean.
    """
    eval_eps = evaluation_points(model, seeds[0], p.eval_points, dtype)
    point = torch.zeros(model.dim, dtype=dtype)
    reference = stage(
        f"reference_{name}",
        lambda: reference_optimum(
            model, eval_eps, p.reference_steps, p.lr, p.init_scale, derive_seed(seed, name, "reference"),
            desc=f"reference {name}",
        ),
        like={"loc": point, "log_scale": point, "elbo": float, "exact": bool},
        dtype=dtype,
    )  # fmt: skip
    adam = _train_stage(stage, f"train_{name}", model, seeds, p, dtype, f"adam {name}", eval_eps=eval_eps)
    init_loc = model.initial_loc(torch.Generator().manual_seed(derive_seed(seeds[0], "init"))).to(dtype)
    curvature = max(abs(largest_curvature(model, init_loc)), abs(largest_curvature(model, reference["loc"])))
    sgd_lr = p.sgd_fraction / max(curvature, 2.0)
    relax = p.sgd_relaxation if name in p.sgd_relaxed_models else 0.0
    lambda_min = smallest_curvature(model, reference["loc"].to(dtype)) if relax > 0 else 0.0
    steps = sgd_steps(p.train_steps, sgd_lr, lambda_min, relax, p.sgd_max_steps)
    every = p.eval_every * max(1, steps // p.train_steps)
    sgd = _train_stage(
        stage, f"sgd_{name}" if steps == p.train_steps else f"sgd_{name}_{steps}", model, seeds, p, dtype,
        f"sgd {name}", lr=sgd_lr, optimizer="sgd", eval_eps=eval_eps, steps=steps, eval_every=every,
    )  # fmt: skip
    return {
        "reference": reference, "adam": adam, "sgd": sgd, "sgd_lr": sgd_lr, "curvature": curvature,
        "lambda_min": lambda_min, "sgd_steps": steps,
    }  # fmt: skip


def _variances(
    model: Model, name: str, init_loc: torch.Tensor, trained: tuple[torch.Tensor, torch.Tensor], p: Sizes, seed: int
) -> dict:
    """The gradient variance by sample size at the initial and at the trained (mu, omega) of ``model``."""
    reps = p.bnn_replicates if name == "bnn" else p.replicates
    chunk = 256 if name == "bnn" else 4096  # base points per batch: the BNN's activations are large
    init_log_scale = torch.full_like(init_loc, math.log(p.init_scale))
    return {
        "init": variance_by_size(
            model, init_loc, init_log_scale, p.sizes, reps, derive_seed(seed, name, "init"), max_points=chunk
        ),
        "trained": variance_by_size(
            model, *trained, p.sizes, reps, derive_seed(seed, name, "trained"), max_points=chunk
        ),
    }


def model_runs(models: Sequence[str], p: Sizes, seed: int, stage: Stages) -> dict[str, Any]:
    """Claims 1-3 per model: training (with the convergence stages where the preset asks) and the gradient
    variances at initialization and after training. :returns: {'dims', 'training', 'variance', 'convergence'}."""
    seeds = [derive_seed(seed, "seed", i) for i in range(p.train_seeds)]
    out: dict[str, Any] = {"dims": {}, "training": {}, "variance": {}, "convergence": {}}
    for name in progress(models, desc="qmcvi models", total=len(models)):
        model = _model(name, p)
        out["dims"][name] = model.dim
        dtype = torch.float32 if name == "bnn" and p.bnn_float32 else torch.float64
        if name in p.convergence_models:
            out["convergence"][name] = _convergence(model, name, seeds, p, seed, dtype, stage)
            out["training"][name] = out["convergence"][name]["adam"]
        else:
            out["training"][name] = _train_stage(stage, f"train_{name}", model, seeds, p, dtype, f"adam {name}")
        init_loc = model.initial_loc(torch.Generator().manual_seed(derive_seed(seeds[0], "init"))).to(dtype)
        trained = tuple(t[0] for t in out["training"][name]["final_mc"])
        sizes = len(p.sizes)
        by_size = {"sizes": [int] * sizes, **{k: [float] * sizes for k in ("mc", "rqmc", "ratio", "log_se")}}
        out["variance"][name] = stage(
            f"variance_{name}",
            functools.partial(_variances, model, name, init_loc, trained, p, seed),
            like={"init": by_size, "trained": by_size},
        )
    return out


def schedule_run(p: Sizes, seed: int, stage: Stages) -> dict:
    """Claim 4: constant-step SGD while N doubles from 2 to schedule_stop, on `schedule_target`."""
    schedule = SampleSizeSchedule(2, p.schedule_stop, 2.0, p.schedule_every)
    seeds = [derive_seed(seed, "schedule", i) for i in range(p.schedule_seeds)]
    return stage(
        "schedule",
        lambda: schedule_experiment(schedule_target(), schedule, seeds, p.schedule_lr, p.init_scale, desc="schedule"),
        dtype=torch.float64,
    )


def extras(p: Sizes, seed: int) -> dict:
    """Side figures: N = 15, 16, 17 (balance) and IWAE gradients, linear and logistic models."""
    out = {}
    for name in ("linear", "logistic"):
        model = make_model(name)
        loc = model.initial_loc()
        log_scale = torch.full((model.dim,), math.log(p.init_scale), dtype=torch.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QMCBalanceWarning)  # N = 15, 17 on purpose
            balance = variance_by_size(
                model, loc, log_scale, (15, 16, 17), p.replicates, derive_seed(seed, name, "balance")
            )
        iw = variance_by_size(
            model, loc, log_scale, (16,), p.replicates, derive_seed(seed, name, "iwae"), objective="iwae"
        )
        out[name] = {"ratio_n15_16_17": balance["ratio"], "iwae_ratio_k16": iw["ratio"][0]}
    return out
