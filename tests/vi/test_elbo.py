"""ELBO and IWAE estimators and Gaussian families against closed forms, finite differences and exact identities."""

import math

import pytest
import torch

from etude.errors import BadInputError
from etude.vi import (
    MC,
    RQMC,
    BayesianLinearRegression,
    BayesianLogisticRegression,
    FullRankGaussian,
    MeanFieldGaussian,
    SampleSizeSchedule,
    base_normals,
    elbo,
    gradient_replicates,
    iwae,
    make_family,
    make_sampler,
)

FAMILY_KINDS = ["mean-field", "full-rank"]


def _gaussian_target(seed, dim=4):
    """log p(z) = log Z + log N(z; m, S) with a random SPD S, as (log_joint, m, S, log Z)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    cov = a @ a.T / dim + 0.5 * torch.eye(dim, dtype=torch.float64)
    mean = torch.randn(dim, generator=gen, dtype=torch.float64)
    log_z = 1.7
    target = torch.distributions.MultivariateNormal(mean, cov)
    return (lambda z: log_z + target.log_prob(z)), mean, cov, log_z


def _family(kind, dim, seed):
    gen = torch.Generator().manual_seed(100 + seed)
    family = make_family(kind, dim, loc=torch.randn(dim, generator=gen, dtype=torch.float64), scale=0.6)
    if kind == "full-rank":
        with torch.no_grad():
            family.raw_tril.add_(0.3 * torch.randn(dim, dim, generator=gen, dtype=torch.float64).tril())
    return family


def _closed_form_elbo(family, mean, cov, log_z):
    """log Z - 1/2 [tr(S^-1 C) + (mu - m)^T S^-1 (mu - m) + d log 2 pi + log |S|] + H[q], differentiable in q."""
    tril = family.scale_tril if isinstance(family, FullRankGaussian) else torch.diag_embed(family.scale)
    c = tril @ tril.T
    prec = torch.linalg.inv(cov)
    diff = family.loc - mean
    d = mean.shape[0]
    expected = -0.5 * (torch.trace(prec @ c) + diff @ prec @ diff + d * math.log(2 * math.pi) + torch.logdet(cov))
    return log_z + expected + family.entropy()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", FAMILY_KINDS)
@pytest.mark.parametrize("sampler_kind", ["mc", "rqmc"])
def test_elbo_estimates_are_unbiased(seed, kind, sampler_kind):
    """Mean of 300 estimates at N = 8 equals the closed-form ELBO within 4 standard errors."""
    log_joint, mean, cov, log_z = _gaussian_target(seed)
    family = _family(kind, 4, seed)
    sampler = make_sampler(sampler_kind, 4, seed=seed)
    with torch.no_grad():
        estimates = elbo(log_joint, family.replicate(300), sampler, 8)
        exact = float(_closed_form_elbo(family, mean, cov, log_z))
    se = float(estimates.std()) / math.sqrt(300)
    assert abs(float(estimates.mean()) - exact) < 4 * se + 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", FAMILY_KINDS)
def test_rqmc_gradient_matches_autograd_on_the_closed_form(seed, kind):
    """Mean of 300 RQMC gradient replicates = grad of the closed-form ELBO, coordinatewise within 4.5 SE."""
    log_joint, mean, cov, log_z = _gaussian_target(seed)
    family = _family(kind, 4, seed)
    grads = gradient_replicates(log_joint, family, RQMC(4, seed=seed), 8, 300, max_points=512)
    exact = torch.autograd.grad(_closed_form_elbo(family, mean, cov, log_z), family.parameters())
    exact = torch.cat([g.reshape(-1) for g in exact])
    se = grads.std(0) / math.sqrt(300)
    assert bool(((grads.mean(0) - exact).abs() <= 4.5 * se + 1e-9).all())
    assert float(grads.var(0).sum()) > 0


@pytest.mark.parametrize("kind", FAMILY_KINDS)
def test_estimator_gradient_matches_finite_differences(kind):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    model = BayesianLogisticRegression(x, (torch.rand(20, generator=gen) < 0.5).double())
    family = _family(kind, model.dim, 0)
    eps = RQMC(model.dim, seed=0).normal(8)
    grads = torch.autograd.grad(elbo(model, family, None, 8, eps=eps), family.parameters())  # type: ignore[arg-type]
    h = 1e-6
    for param, grad in zip(family.parameters(), grads):
        flat = param.detach().reshape(-1)
        for i in range(flat.numel()):
            if kind == "full-rank" and param is family.raw_tril and i // model.dim < i % model.dim:
                continue  # the upper triangle is unused
            with torch.no_grad():
                flat[i] += h
                up = float(elbo(model, family, None, 8, eps=eps))  # type: ignore[arg-type]
                flat[i] -= 2 * h
                down = float(elbo(model, family, None, 8, eps=eps))  # type: ignore[arg-type]
                flat[i] += h
            assert abs((up - down) / (2 * h) - float(grad.reshape(-1)[i])) < 1e-5 * (1 + abs(float(grad.reshape(-1)[i])))


def test_batched_replicates_equal_one_by_one_gradients():
    log_joint, *_ = _gaussian_target(0)
    family = _family("mean-field", 4, 0)
    batched = gradient_replicates(log_joint, family, RQMC(4, seed=3), 8, 5, max_points=16)  # 2 per batch
    sampler = RQMC(4, seed=3)
    for r in range(5):
        single = torch.autograd.grad(elbo(log_joint, family, sampler, 8), family.parameters())
        assert torch.allclose(batched[r], torch.cat([g.reshape(-1) for g in single]), atol=1e-12)


def _conjugate():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    return BayesianLinearRegression(x, x @ torch.tensor([1.0, -0.5], dtype=torch.float64) + 0.3, noise_scale=0.8)


def _posterior_family(model):
    mean, precision = model.posterior()
    family = FullRankGaussian(model.dim, loc=mean)
    with torch.no_grad():
        chol = torch.linalg.cholesky(torch.linalg.inv(precision))
        family.raw_tril.copy_(torch.tril(chol, -1) + torch.diag_embed(chol.diagonal().log()))
    return family


@pytest.mark.parametrize("k", [1, 5, 16])
def test_at_the_exact_posterior_every_weight_is_the_evidence(k):
    """q = p(z | y): log p(y, z) - log q(z) = log p(y) for every z, so IWAE and the sampled ELBO are exact."""
    model = _conjugate()
    family = _posterior_family(model)
    sampler = MC(model.dim, seed=k)
    with torch.no_grad():
        bound, sampled = iwae(model, family, sampler, k), elbo(model, family, sampler, k, entropy="sampled")
    assert float(bound) == pytest.approx(model.log_evidence(), abs=1e-8)
    assert float(sampled) == pytest.approx(model.log_evidence(), abs=1e-8)


def test_iwae_with_one_sample_is_the_sampled_elbo_and_more_samples_tighten_it():
    model = _conjugate()
    family = MeanFieldGaussian(model.dim, scale=0.3)
    eps = RQMC(model.dim, seed=0).normal(1)
    with torch.no_grad():
        assert float(iwae(model, family, None, 1, eps=eps)) == pytest.approx(  # type: ignore[arg-type]
            float(elbo(model, family, None, 1, entropy="sampled", eps=eps)), abs=1e-10)  # type: ignore[arg-type]
        many = family.replicate(200)
        l16, l1 = iwae(model, many, RQMC(model.dim, seed=1), 16), elbo(model, many, RQMC(model.dim, seed=2), 16)
    se = math.sqrt(float(l16.var() + l1.var()) / 200)
    assert float(l16.mean() - l1.mean()) > 4 * se  # L_1 < L_16 in expectation
    assert float(l16.mean()) < model.log_evidence() + 4 * float(l16.std()) / math.sqrt(200)


@pytest.mark.parametrize("kind", FAMILY_KINDS)
def test_entropy_and_log_prob_match_torch_distributions(kind):
    family = _family(kind, 3, 4)
    cov = family.covariance()
    reference = torch.distributions.MultivariateNormal(family.loc.detach(), cov)
    assert float(family.entropy().detach()) == pytest.approx(float(reference.entropy()), abs=1e-10)
    z = torch.randn(2, 5, 3, dtype=torch.float64)
    assert torch.allclose(family.log_prob(z), reference.log_prob(z), atol=1e-10)
    eps = torch.randn(6, 3, dtype=torch.float64)
    assert torch.allclose(family.rsample(eps), family.loc + eps @ torch.linalg.cholesky(cov).T, atol=1e-10)


def test_replicate_and_select_round_trip():
    family = _family("full-rank", 3, 0)
    copies = family.replicate(4)
    assert copies.batch_shape == (4,) and copies.loc.is_leaf and copies.loc.requires_grad
    assert torch.equal(copies.select(2).flat_parameters(), family.flat_parameters())
    with pytest.raises(BadInputError, match="unbatched"):
        copies.replicate(2)


def test_schedule_doubles_n_every_stage():
    schedule = SampleSizeSchedule(2, 1024, 2.0, 100)
    assert [schedule(t) for t in (0, 99, 100, 250, 899, 900, 10**6)] == [2, 2, 4, 8, 512, 1024, 1024]
    assert schedule.stages() == [2**k for k in range(1, 11)] and schedule.iterations() == 1000


def test_schedule_rounds_up_to_powers_of_two_or_not():
    rounded = SampleSizeSchedule(3, 64, 1.5, 1)
    assert [rounded(t) for t in range(6)] == [4, 8, 8, 16, 16, 32]
    assert all(n & (n - 1) == 0 for n in rounded.stages())
    plain = SampleSizeSchedule(3, 20, 2.0, 5, power_of_two=False)
    assert plain.stages() == [3, 6, 12, 20] and plain.iterations() == 20


@pytest.mark.parametrize("kwargs, match", [
    ({"start": 0}, "start must be an int >= 1, got 0"),
    ({"stop": 1}, "stop must be an int >= 2, got 1"),
    ({"factor": 0.5}, "factor must be a number >= 1"),
    ({"stop": 1000}, "stop must be a power of two"),
    ({"every": 0}, "every must be"),
])
def test_schedule_rejects_bad_settings(kwargs, match):
    with pytest.raises(BadInputError, match=match):
        SampleSizeSchedule(**kwargs)


def test_estimators_reject_bad_input():
    log_joint, *_ = _gaussian_target(0)
    family = MeanFieldGaussian(4)
    with pytest.raises(BadInputError, match="entropy must be one of"):
        elbo(log_joint, family, MC(4, seed=0), 4, entropy="exact")
    with pytest.raises(BadInputError, match="sampler dim must equal the family's dim 4, got 3"):
        elbo(log_joint, family, MC(3, seed=0), 4)
    with pytest.raises(BadInputError, match="expected 2 samplers"):
        base_normals([MC(4), MC(4), MC(4)], 4, family.replicate(2))
    with pytest.raises(BadInputError, match="n must be an int >= 1"):
        elbo(log_joint, family, MC(4), 0)
    with pytest.raises(BadInputError, match="objective must be"):
        gradient_replicates(log_joint, family, MC(4), 4, 3, objective="kl")
    with pytest.raises(BadInputError, match="family must be one of"):
        make_family("diagonal", 3)
    with pytest.raises(BadInputError, match="scale must be positive"):
        MeanFieldGaussian(3, scale=-1.0)
    with pytest.raises(BadInputError, match="loc must be a scalar or have shape \\(3,\\), got shape \\(2,\\)"):
        MeanFieldGaussian(3, loc=torch.zeros(2))
