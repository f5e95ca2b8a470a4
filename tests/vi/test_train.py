"""Optimizers by hand, fit determinism and batching, convergence to the exact optimum, experiments, analysis."""

import math

import pytest
import torch

from etude.errors import BadInputError
from etude.vi import (
    MC,
    RQMC,
    BayesianLinearRegression,
    MeanFieldGaussian,
    SampleSizeSchedule,
    elbo,
    evaluate_elbo,
    first_reach,
    fit,
    loglog_slope,
    make_sampler,
    trace_variance,
    variance_ratio,
    window_mean,
)
from etude.vi.experiments import schedule_experiment, schedule_target, variance_by_size
from etude.vi.train import SGD, Adam


def test_adam_two_steps_by_hand():
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = Adam([p], lr=0.1)
    grads = [torch.tensor([0.5, -4.0], dtype=torch.float64), torch.tensor([1.5, 2.0], dtype=torch.float64)]
    expected = p.detach().clone()
    m = v = torch.zeros(2, dtype=torch.float64)
    for t, g in enumerate(grads, start=1):
        p.grad = g.clone()
        opt.step()
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        expected -= 0.1 * (m / (1 - 0.9**t)) / ((v / (1 - 0.999**t)).sqrt() + 1e-8)
        assert torch.allclose(p.detach(), expected, atol=1e-14)


def test_sgd_is_a_constant_step():
    p = torch.ones(3, requires_grad=True)
    opt = SGD([p], lr=0.5)
    p.grad = torch.tensor([1.0, 2.0, -2.0])
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([0.5, 0.0, 2.0]))


def _small_model():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    return BayesianLinearRegression(x, x @ torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64), noise_scale=1.0)


@pytest.mark.parametrize("kind", ["mc", "rqmc"])
def test_fit_is_deterministic_and_a_seed_runs_the_same_alone_or_in_a_batch(kind):
    model = _small_model()

    def run(seeds):
        family = MeanFieldGaussian(model.dim).replicate(len(seeds))
        history = fit(model, family, [make_sampler(kind, model.dim, seed=s) for s in seeds], 15, 4, lr=0.05)
        return family.flat_parameters(), history.train_elbo

    batch, batch_elbo = run([3, 9, 4])
    again, again_elbo = run([3, 9, 4])
    alone, alone_elbo = run([9])
    assert torch.equal(batch, again) and torch.equal(batch_elbo, again_elbo)
    assert torch.allclose(batch[1], alone[0], atol=1e-12) and torch.allclose(batch_elbo[:, 1], alone_elbo[:, 0])
    assert not torch.allclose(batch[0], batch[1])


def test_sgd_with_growing_n_reaches_the_exact_mean_field_optimum():
    model = _small_model()
    mu, sigma = model.mean_field_optimum()
    family = MeanFieldGaussian(model.dim, scale=0.5)
    schedule = SampleSizeSchedule(4, 256, 2.0, 40)
    history = fit(model, family, RQMC(model.dim, seed=0), schedule.iterations(), schedule, optimizer="sgd", lr=0.02)
    assert history.sizes[0] == 4 and history.sizes[-1] == 256 and len(history.sizes) == schedule.iterations()
    assert torch.allclose(family.loc.detach(), mu, atol=2e-3)
    assert torch.allclose(family.scale.detach(), sigma, rtol=2e-2)


def test_evaluations_and_tracking_are_recorded():
    model = _small_model()
    family = MeanFieldGaussian(model.dim)
    eval_eps = RQMC(model.dim, seed=1).normal(64)
    before = float(evaluate_elbo(model, family, eval_eps))
    with torch.no_grad():
        assert before == pytest.approx(float(elbo(model, family, None, 64, eps=eval_eps)), rel=1e-12)  # type: ignore[arg-type]
    history = fit(model, family, MC(model.dim, seed=0), 10, 8, eval_eps=eval_eps, eval_every=4,
                  track=lambda f: f.loc.detach().norm())
    assert history.eval_steps == [0, 4, 8, 10] and history.eval_elbo.shape == (4, 1)
    assert float(history.eval_elbo[0, 0]) == pytest.approx(before) and float(history.eval_elbo[-1, 0]) > before
    assert history.tracked.shape == (11, 1) and float(history.tracked[0, 0]) == 0.0


def test_fit_rejects_bad_settings():
    model = _small_model()
    family = MeanFieldGaussian(model.dim)
    with pytest.raises(BadInputError, match="optimizer must be one of \\('adam', 'sgd'\\), got 'lbfgs'"):
        fit(model, family, MC(model.dim), 5, 4, optimizer="lbfgs")
    with pytest.raises(BadInputError, match="steps must be an int >= 1"):
        fit(model, family, MC(model.dim), 0, 4)
    with pytest.raises(BadInputError, match="eval_every needs eval_eps"):
        fit(model, family, MC(model.dim), 5, 4, eval_every=2)


def test_schedule_experiment_separates_mc_and_rqmc():
    out = schedule_experiment(schedule_target(), SampleSizeSchedule(2, 64, 2.0, 30), [0, 1], lr=0.02, init_scale=0.1)
    assert out["stages"] == [2, 4, 8, 16, 32, 64] and out["errors_mc"].shape == (181, 2)
    assert loglog_slope(out["stages"][1:], out["stage_rqmc"][1:]) < loglog_slope(out["stages"][1:], out["stage_mc"][1:]) - 0.3
    assert out["stage_rqmc"][-1] < out["stage_mc"][-1]
    # a stage's error is the mean over seeds of the second half of its 30 steps (row t = after t steps)
    for i, _ in enumerate(out["stages"]):
        assert out["stage_mc"][i] == pytest.approx(float(out["errors_mc"][16 + 30 * i: 31 + 30 * i].mean()), rel=1e-12)


def test_variance_by_size_reports_ratios_above_one():
    model = _small_model()
    out = variance_by_size(model, torch.zeros(model.dim, dtype=torch.float64),
                           torch.full((model.dim,), math.log(0.1), dtype=torch.float64), (4, 64), 40, seed=0)
    assert out["sizes"] == [4, 64] and all(r > 1 for r in out["ratio"]) and out["ratio"][1] > out["ratio"][0]
    assert out["mc"][0] / out["mc"][1] == pytest.approx(16, rel=0.5)  # MC variance ~ 1/N


def test_trace_variance_and_its_standard_error():
    gen = torch.Generator().manual_seed(0)
    grads = torch.randn(4000, 3, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    value, se = trace_variance(grads)
    assert value == pytest.approx(float(grads.var(0).sum()), rel=1e-12)
    assert abs(value - 14.0) < 4 * se and se == pytest.approx(math.sqrt(2 * (1 + 16 + 81) / 4000), rel=0.15)
    ratio, log_se = variance_ratio(grads, grads / 2)
    assert ratio == pytest.approx(4.0) and log_se > 0
    with pytest.raises(BadInputError, match="replicates >= 3"):
        trace_variance(grads[:2])


def test_slopes_hitting_times_and_windows():
    assert loglog_slope([1, 2, 4, 8], [3.0, 0.75, 0.1875, 0.046875]) == pytest.approx(-2.0)
    values = torch.tensor([[0.0, 0.0], [1.0, 0.5], [2.0, 0.5], [3.0, 4.0]])
    assert first_reach([0, 10, 20, 30], values, 2.0, never=99).tolist() == [20, 30]
    assert first_reach([0, 10, 20, 30], values, 5.0, never=99).tolist() == [99, 99]
    assert window_mean([0, 10, 20, 30], values, 0.5, 1.0).tolist() == [2.5, 2.25]
    with pytest.raises(BadInputError, match="two distinct x"):
        loglog_slope([2, 2], [1.0, 3.0])
