"""Pyro adapter: an unchanged Pyro model trained with (R)QMC base points gives our estimator's exact values."""

import pytest
import torch

pyro = pytest.importorskip("pyro")
import pyro.distributions as dist  # noqa: E402
from pyro.infer import Trace_ELBO  # noqa: E402
from pyro.infer.autoguide import init_to_mean  # noqa: E402

from etude.errors import BadInputError  # noqa: E402
from etude.vi.train import Adam  # noqa: E402
from etude.vi import (  # noqa: E402
    RQMC,
    BayesianLinearRegression,
    FullRankGaussian,
    MeanFieldGaussian,
    QMCAutoDiagonalNormal,
    QMCAutoMultivariateNormal,
    QMCNormal,
    elbo,
    pyro_available,
)


def _regression():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(30, 3, generator=gen, dtype=torch.float64)
    model = BayesianLinearRegression(x, x @ torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64), noise_scale=0.5)
    design, y = model.design, model.y

    def pyro_model():
        w = pyro.sample("w", dist.Normal(torch.zeros(model.dim, dtype=torch.float64), 1.0).to_event(1))
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Normal((w * design).sum(-1), 0.5), obs=y)

    return model, pyro_model


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("guide_class, family_class", [(QMCAutoDiagonalNormal, MeanFieldGaussian),
                                                       (QMCAutoMultivariateNormal, FullRankGaussian)])
def test_pyro_loss_and_gradient_equal_our_estimator_on_the_same_points(seed, guide_class, family_class):
    pyro.clear_param_store()
    model, pyro_model = _regression()
    guide = guide_class(pyro_model, sampler="rqmc", seed=seed, init_loc_fn=init_to_mean, init_scale=0.1)
    # max_plate_nesting given: Pyro does not run the guide once to guess it (which would use one point set)
    loss = Trace_ELBO(num_particles=16, vectorize_particles=True, max_plate_nesting=1).differentiable_loss(pyro_model, guide)
    family = family_class(model.dim, scale=0.1)
    ours = elbo(model, family, RQMC(model.dim, seed=seed), 16, entropy="sampled")
    assert float(loss.detach()) == pytest.approx(-float(ours.detach()), rel=1e-12)
    (g_pyro,) = torch.autograd.grad(loss, guide.loc)
    (g_ours,) = torch.autograd.grad(-ours, family.loc)
    assert torch.allclose(g_pyro, g_ours, atol=1e-9)
    assert isinstance(guide.base_sampler, RQMC)


def test_qmc_normal_draws_one_point_set_for_all_particles():
    base = QMCNormal(RQMC(3, seed=0), torch.float64).expand([8, 1])
    z = base.rsample()
    assert z.shape == (8, 1, 3)
    assert torch.equal(z.reshape(8, 3), RQMC(3, seed=0).normal(8))
    assert torch.allclose(base.log_prob(z), dist.Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_training_a_pyro_guide_with_rqmc_improves_the_elbo():
    """Pyro's loss, our Adam (torch.optim would import torch._dynamo, ~5 s)."""
    pyro.clear_param_store()
    _, pyro_model = _regression()
    guide = QMCAutoDiagonalNormal(pyro_model, seed=0, init_loc_fn=init_to_mean)
    loss_fn = Trace_ELBO(num_particles=8, vectorize_particles=True, max_plate_nesting=1)
    losses = [float(loss_fn.differentiable_loss(pyro_model, guide).detach())]
    params = list(guide.parameters())
    opt = Adam(params, lr=0.05)
    for _ in range(60):
        loss = loss_fn.differentiable_loss(pyro_model, guide)
        opt.zero_grad()
        for p, g in zip(params, torch.autograd.grad(loss, params)):
            p.grad = g
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0] and pyro_available()


def test_unknown_sampler_kind_is_refused_at_construction():
    with pytest.raises(BadInputError, match="sampler kind must be one of"):
        QMCAutoDiagonalNormal(_regression()[1], sampler="halton")
