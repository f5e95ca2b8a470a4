"""Exchangeable processes: recursion vs brute-force multivariate t / Gaussian conditionals, invariances."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from etude.errors import BadInputError
from etude.exchangeable import GaussianProcess, StudentTProcess, student_t_log_prob

SEEDS = [0, 1, 2]


def _make(kind, dim=3, nu=5.0):
    var = torch.tensor([1.0, 2.5, 0.4][:dim], dtype=torch.float64)
    corr = torch.tensor([0.1, 0.5, 0.9][:dim], dtype=torch.float64)
    mu = torch.tensor([0.0, -1.0, 0.7][:dim], dtype=torch.float64)
    if kind == "tp":
        return StudentTProcess(dim, nu=torch.tensor([nu, 3.5, 40.0][:dim]), mu=mu, var=var, corr=corr,
                               dtype=torch.float64)
    return GaussianProcess(dim, mu=mu, var=var, corr=corr, dtype=torch.float64)


def _joint_log_density(kind, x, mu, v, rho, nu):
    """log density of the whole sequence x [n] under the exchangeable joint: covariance
    K = (v - rho) I + rho 11^T; a multivariate t with covariance K has shape (nu - 2)/nu K."""
    n = len(x)
    cov = (v - rho) * torch.eye(n, dtype=torch.float64) + rho
    r = x - mu
    _, logdet = torch.linalg.slogdet(cov)
    if kind == "gp":
        quad = r @ torch.linalg.solve(cov, r)
        return -0.5 * (n * math.log(2 * math.pi) + logdet + quad)
    shape = (nu - 2) / nu * cov
    _, logdet = torch.linalg.slogdet(shape)
    quad = r @ torch.linalg.solve(shape, r)
    return (torch.lgamma((nu + n) / 2) - torch.lgamma(nu / 2) - n / 2 * torch.log(nu * math.pi)
            - 0.5 * logdet - (nu + n) / 2 * torch.log1p(quad / nu))


@pytest.mark.parametrize("kind", ["tp", "gp"])
@pytest.mark.parametrize("seed", SEEDS)
def test_recursion_equals_brute_force_conditional(kind, seed):
    """log p(x_i | x_<i) = log p(x_<=i) - log p(x_<i) with dense-covariance joints, to 1e-10."""
    p = _make(kind)
    xs = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1.5
    batched = p.sequence_log_prob(xs).detach()
    p.reset()
    streamed = []
    for i in range(7):
        streamed.append(p.log_prob(xs[:, i]).detach())
        p.update(xs[:, i])
    streamed = torch.stack(streamed, 1)
    v, rho, mu = p.var.detach(), p.rho.detach(), p.mu
    nu = p.nu.detach() if kind == "tp" else torch.zeros(3, dtype=torch.float64)
    for b in range(2):
        for i in range(7):
            expected = 0.0
            for d in range(3):
                seq = xs[b, : i + 1, d]
                prev = _joint_log_density(kind, seq[:-1], mu[d], v[d], rho[d], nu[d]) if i else 0.0
                expected += float(_joint_log_density(kind, seq, mu[d], v[d], rho[d], nu[d]) - prev)
            assert abs(batched[b, i].item() - expected) < 1e-10
            assert abs(streamed[b, i].item() - expected) < 1e-10


@pytest.mark.parametrize("seed", SEEDS)
def test_student_t_joint_matches_scipy(seed):
    p = _make("tp", dim=1, nu=6.0)
    x = torch.randn(1, 5, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    v, rho, nu = (float(t.detach()) for t in (p.var, p.rho, p.nu))
    cov = (v - rho) * np.eye(5) + rho
    ref = stats.multivariate_t.logpdf(x[0, :, 0].numpy(), loc=np.full(5, float(p.mu)), shape=(nu - 2) / nu * cov, df=nu)
    assert abs(p.sequence_log_prob(x).sum().item() - ref) < 1e-10


@pytest.mark.parametrize("kind", ["tp", "gp"])
@pytest.mark.parametrize("seed", SEEDS)
def test_joint_density_is_permutation_invariant(kind, seed):
    p = _make(kind)
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(3, 9, 3, generator=g, dtype=torch.float64)
    perm = torch.randperm(9, generator=g)
    a, b = p.sequence_log_prob(xs).sum(1), p.sequence_log_prob(xs[:, perm]).sum(1)
    assert torch.allclose(a, b, rtol=0, atol=1e-11)
    assert not torch.allclose(p.sequence_log_prob(xs), p.sequence_log_prob(xs[:, perm]))  # per position differs


@pytest.mark.parametrize("kind", ["tp", "gp"])
def test_no_observation_gives_the_prior(kind):
    p = _make(kind)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    v, mu = p.var.detach(), p.mu
    if kind == "tp":
        nu = p.nu.detach()
        ref = sum(stats.t.logpdf(x[:, d].numpy(), df=float(nu[d]), loc=float(mu[d]),
                                 scale=math.sqrt(float((nu[d] - 2) / nu[d] * v[d]))) for d in range(3))
    else:
        ref = sum(stats.norm.logpdf(x[:, d].numpy(), loc=float(mu[d]), scale=math.sqrt(float(v[d]))) for d in range(3))
    p.reset()
    assert np.allclose(p.log_prob(x).detach().numpy(), ref, rtol=0, atol=1e-12)
    assert np.allclose(p.prior_log_prob(x).detach().numpy(), ref, rtol=0, atol=1e-12)
    assert np.allclose(p.sequence_log_prob(x.unsqueeze(1))[:, 0].detach().numpy(), ref, rtol=0, atol=1e-12)
    empty = torch.zeros(4, 0, 3, dtype=torch.float64)
    assert np.allclose(p.conditional_log_prob(empty, x.unsqueeze(1))[:, 0].detach().numpy(), ref, atol=1e-12)


def test_large_nu_gives_the_gaussian_process():
    """The gap to the GP shrinks like 1/nu: below 1e-5 nats at nu = 1e7 (lgamma's float64 precision
    limits how far this can go)."""
    kw = dict(var=torch.tensor([1.0, 3.0]), corr=torch.tensor([0.2, 0.6]), dtype=torch.float64)
    gp = GaussianProcess(2, **kw)
    xs = torch.randn(3, 12, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gaps = {nu: (StudentTProcess(2, nu=nu, **kw).sequence_log_prob(xs) - gp.sequence_log_prob(xs)).abs().max().item()
            for nu in (4.0, 1e5, 1e7)}
    assert gaps[1e7] < 1e-5
    assert 50 < gaps[1e5] / gaps[1e7] < 200  # ~100: the 1/nu rate
    assert gaps[4.0] > 1e-2


def test_conditional_log_prob_is_the_last_sequence_position():
    p = _make("tp")
    g = torch.Generator().manual_seed(3)
    context, query = torch.randn(2, 5, 3, generator=g, dtype=torch.float64), torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    got = p.conditional_log_prob(context, query)
    for q in range(4):
        full = p.sequence_log_prob(torch.cat([context, query[:, q: q + 1]], 1))[:, -1]
        assert torch.allclose(got[:, q], full, atol=1e-12)


def test_parameterization_round_trips_and_gradients_flow():
    p = StudentTProcess(2, nu=torch.tensor([7.0, 1000.0]), mu=0.5, var=torch.tensor([0.3, 2.0]), corr=0.25,
                        dtype=torch.float64)
    assert torch.allclose(p.var, torch.tensor([0.3, 2.0], dtype=torch.float64))
    assert torch.allclose(p.rho, torch.tensor([0.075, 0.5], dtype=torch.float64))
    assert torch.allclose(p.nu, torch.tensor([7.0, 1000.0], dtype=torch.float64))
    assert torch.allclose(p.var, torch.nn.functional.softplus(p.a) ** 2)
    assert torch.allclose(p.rho, torch.sigmoid(p.b) * p.var) and torch.allclose(p.nu, torch.exp(p.c) + 2)
    p.sequence_log_prob(torch.randn(2, 4, 2, dtype=torch.float64)).sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (p.a, p.b, p.c))


@pytest.mark.parametrize("kind", ["tp", "gp"])
def test_samples_follow_the_predictive(kind):
    p = _make(kind, dim=1, nu=8.0)
    p.update(torch.tensor([1.0], dtype=torch.float64))
    p.update(torch.tensor([2.0], dtype=torch.float64))
    draws = p.sample(40000, torch.Generator().manual_seed(0)).squeeze(-1)
    assert draws.shape == (40000,)
    mean, var = p._mean.item(), p._k.item()
    if kind == "tp":
        nu = p.nu.item()
        var = (nu + p._beta.item() - 2) / (nu + 2 - 2) * var
    assert abs(draws.mean().item() - mean) < 4 * math.sqrt(var / 40000)
    assert abs(draws.var().item() / var - 1) < 0.05
    a = p.sample(5, torch.Generator().manual_seed(1))
    b = p.sample(5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_student_t_log_prob_matches_scipy():
    x = torch.linspace(-4, 4, 9, dtype=torch.float64)
    got = student_t_log_prob(x, 5.0, torch.tensor(0.3, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
    ref = stats.t.logpdf(x.numpy(), df=5.0, loc=0.3, scale=math.sqrt(3 / 5 * 2.0))
    assert np.allclose(got.numpy(), ref, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=0), "dim"), (dict(dim=2, var=-1.0), "var"), (dict(dim=2, corr=1.0), "corr"),
    (dict(dim=2, corr=0.0), "corr"), (dict(dim=2, nu=2.0), "nu"), (dict(dim=2, var=torch.ones(3)), "var"),
    (dict(dim=2, dtype=torch.int64), "dtype"), (dict(dim=2, mu=True), "mu"),
])
def test_bad_constructor_arguments_raise(kwargs, match):
    with pytest.raises(BadInputError, match=match):
        StudentTProcess(**kwargs)


def test_bad_shapes_raise():
    p = GaussianProcess(3)
    with pytest.raises(BadInputError, match=r"\[\.\.\., 3\]"):
        p.update(torch.zeros(2, 4))
    with pytest.raises(BadInputError, match="batch, n, 3"):
        p.sequence_log_prob(torch.zeros(5, 3))
    with pytest.raises(BadInputError, match="floating"):
        p.log_prob(torch.zeros(3, dtype=torch.long))
    with pytest.raises(BadInputError, match="n must"):
        p.sample(0)
