"""Claim 3 of qmcvi: the reference optimum, the curvature that sets the SGD step, the gap summary
and a criterion that fails when RQMC does not help."""

import math

import pytest
import torch

from etude.vi import criteria, make_model
from etude.vi.analysis import gap_summary
from etude.vi.experiments import (
    evaluation_points,
    largest_curvature,
    reference_optimum,
    sgd_steps,
    smallest_curvature,
)


def test_reference_of_the_conjugate_model_is_its_exact_mean_field_optimum():
    model = make_model("linear")
    eps = evaluation_points(model, 0, 64)
    ref = reference_optimum(model, eps, steps=5, lr=0.01, init_scale=0.1, seed=0)
    mu, sigma = model.mean_field_optimum()
    assert ref["exact"] and torch.allclose(ref["loc"], mu) and torch.allclose(ref["log_scale"].exp(), sigma)


def test_reference_run_climbs_above_the_initialization():
    model = make_model("logistic")
    eps = evaluation_points(model, 0, 64)
    ref = reference_optimum(model, eps, steps=60, lr=0.05, init_scale=0.1, seed=0, n=32)
    start = reference_optimum(model, eps, steps=1, lr=1e-9, init_scale=0.1, seed=0, n=32)
    assert not ref["exact"] and ref["elbo"] > start["elbo"] + 1.0


def test_largest_curvature_is_the_top_eigenvalue_of_the_posterior_precision():
    model = make_model("linear")
    _, precision = model.posterior()  # -Hessian of log p(z), constant for the conjugate model
    top = float(torch.linalg.eigvalsh(precision)[-1])
    assert largest_curvature(model, torch.zeros(model.dim, dtype=torch.float64), iterations=200) == pytest.approx(
        top, rel=1e-6)


def _traces(final_mc, final_rqmc, evals=41, seeds=5):
    steps = list(range(0, 20 * evals, 20))
    t = torch.linspace(0, 1, evals)[:, None].expand(evals, seeds).double()

    def trace(final):  # ELBO rising from -10 to -final_gap below the reference 0
        return -10 * torch.exp(-15 * t) - final * (1 - torch.exp(-15 * t))

    return steps, trace(final_mc), trace(final_rqmc)


def test_gap_summary_reads_plateaus_and_hitting_times():
    steps, mc, rqmc = _traces(0.5, 0.05)
    s = gap_summary(steps, mc, rqmc, 0.0, (1.0, 0.3, 0.1), never=steps[-1] + 20)
    assert s["mc"]["plateau_gap"] == pytest.approx(0.5, rel=0.05)
    assert s["rqmc"]["plateau_gap"] == pytest.approx(0.05, rel=0.2)
    assert s["delta"] == pytest.approx(s["mc"]["plateau_gap"])  # tied to MC's own plateau
    assert math.isinf(s["speedup"]) is False and s["speedup"] > 1.25
    assert s["mc"]["iterations_to_gap"][0.1] == steps[-1] + 20  # MC never gets within 0.1 (reported grid)
    assert s["mc"]["iterations_to_delta"] > s["rqmc"]["iterations_to_delta"]
    assert s["counts"] and s["credible"]
    # a run above the reference by more than 0.05 makes the reference not credible
    assert not gap_summary(steps, mc + 1.0, rqmc, 0.0, (1.0,), never=steps[-1] + 20)["credible"]


def test_convergence_criterion_fails_when_rqmc_traces_equal_mc():
    steps, mc, _ = _traces(0.5, 0.5)
    run = {"steps": steps, "mc": mc, "rqmc": mc.clone()}
    convergence = {name: {"reference": {"elbo": 0.0, "exact": name == "linear"}, "adam": run, "sgd": run,
                          "sgd_lr": 0.01} for name in ("linear", "logistic", "poisson")}
    decision, summary = criteria.convergence(convergence, (1.0, 0.3, 0.1), 5, 800, 16)
    assert decision["conclusive"] and not decision["holds"]
    steps, mc, rqmc = _traces(0.5, 0.05)
    good = {"steps": steps, "mc": mc, "rqmc": rqmc}
    for c in convergence.values():
        c["adam"] = c["sgd"] = good
    decision, summary = criteria.convergence(convergence, (1.0, 0.3, 0.1), 5, 800, 16)
    assert decision["holds"] and summary["linear"]["adam"]["counts"]
    noise = torch.Generator().manual_seed(0)  # noise around one plateau for both samplers: no model counts
    flat = {"steps": steps, "mc": -0.5 - 0.01 * torch.rand(mc.shape, generator=noise, dtype=torch.float64),
            "rqmc": -0.5 - 0.01 * torch.rand(mc.shape, generator=noise, dtype=torch.float64)}
    for c in convergence.values():
        c["adam"] = c["sgd"] = flat
    assert not criteria.convergence(convergence, (1.0, 0.3, 0.1), 5, 800, 16)[0]["holds"]


def test_smallest_curvature_and_the_sgd_run_length():
    model = make_model("linear")
    _, precision = model.posterior()
    eig = torch.linalg.eigvalsh(precision)
    top = float(eig[-1])
    low = smallest_curvature(model, torch.zeros(model.dim, dtype=torch.float64))
    assert low == pytest.approx(float(eig[0]), rel=1e-9)
    hier = make_model("hierarchical")
    assert smallest_curvature(hier, torch.zeros(hier.dim, dtype=torch.float64)) < 0  # indefinite at 0
    eta = 0.5 / top
    assert sgd_steps(800, eta, low, 6.0, 20000) == max(800, min(20000, math.ceil(6.0 / (eta * low))))
    assert sgd_steps(800, eta, -1.0, 6.0, 20000) == 800  # indefinite Hessian: no time constant
    assert sgd_steps(800, eta, 1e-9, 6.0, 20000) == 20000  # the cap
    assert sgd_steps(800, eta, low, 0.0, 20000) == 800  # off


def test_a_run_still_descending_is_not_converged():
    steps, mc, rqmc = _traces(0.5, 0.05)
    slow = -10 * torch.exp(-2 * torch.linspace(0, 1, len(steps)))[:, None].expand_as(mc).double()
    s = gap_summary(steps, slow, rqmc, 0.0, (1.0,), never=steps[-1] + 20)
    assert not s["mc"]["converged"] and not s["eligible"] and s["rqmc"]["converged"]
