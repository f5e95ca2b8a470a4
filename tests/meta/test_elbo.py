"""ELBO pieces against closed forms: Gaussian log-densities, KLs, importance sampling in a linear-Gaussian model."""

import math

import pytest
import torch
from torch import nn

from etude.errors import BadInputError
from etude.meta import SetModel, bernoulli_log_prob, gaussian_kl, gaussian_log_prob, importance_log_likelihood, masked_mean

SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
def test_gaussian_log_prob_and_kl_match_torch_distributions(seed):
    g = torch.Generator().manual_seed(seed)
    mu_q, lv_q, mu_p, lv_p, x = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(5))
    q = torch.distributions.Normal(mu_q, (0.5 * lv_q).exp())
    p = torch.distributions.Normal(mu_p, (0.5 * lv_p).exp())
    assert torch.allclose(gaussian_log_prob(x, mu_q, lv_q), q.log_prob(x).sum(-1), atol=1e-12)
    assert torch.allclose(gaussian_kl(mu_q, lv_q, mu_p, lv_p), torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-12)
    standard = torch.distributions.Normal(torch.zeros_like(mu_q), torch.ones_like(mu_q))
    assert torch.allclose(gaussian_kl(mu_q, lv_q), torch.distributions.kl_divergence(q, standard).sum(-1), atol=1e-12)
    assert torch.allclose(gaussian_kl(mu_q, lv_q, mu_q, lv_q), torch.zeros(5, dtype=torch.float64), atol=1e-12)


def test_bernoulli_log_prob_matches_torch():
    g = torch.Generator().manual_seed(0)
    x, logits = (torch.rand(4, 6, generator=g) > 0.5).float(), torch.randn(4, 6, generator=g)
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    assert torch.allclose(bernoulli_log_prob(x, logits), expected, atol=1e-6)


def test_masked_mean_ignores_padding_and_rejects_empty_sets():
    values = torch.tensor([[1.0, 3.0, 100.0], [2.0, -50.0, 4.0]])
    mask = torch.tensor([[True, True, False], [True, False, True]])
    assert torch.allclose(masked_mean(values, mask, 1), torch.tensor([2.0, 3.0]))
    with pytest.raises(BadInputError, match="all False"):
        masked_mean(values, torch.tensor([[True, False, False], [False, False, False]]), 1)


class LinearGaussian(SetModel):
    """x = w z + b + sigma eps, z ~ N(0, 1), with a q(z | x) set to N(a x + c, s^2): a tiny oracle model."""

    needs_index = False

    def __init__(self, w, b, sigma, a, c, s):
        super().__init__(1, 1, "gaussian")
        self.w, self.b, self.sigma, self.a, self.c, self.s = w, b, sigma, a, c, s
        self.dummy = nn.Parameter(torch.zeros(()))

    def _condition(self, x, context, context_mask, index, generator, sample):
        return {}

    def _posterior(self, x, cond):
        return self.a * x + self.c, torch.full_like(x, 2 * math.log(self.s))

    def _decode(self, z, cond):
        return torch.cat([self.w * z + self.b, torch.full_like(z, 2 * math.log(self.sigma))], -1)


def _exact_posterior(w, b, sigma):
    """p(z | x) = N(a x + c, s^2) for x = w z + b + sigma eps, z ~ N(0, 1)."""
    s2 = 1.0 / (1.0 + w * w / sigma**2)
    return w * s2 / sigma**2, -w * b * s2 / sigma**2, math.sqrt(s2)


@pytest.mark.parametrize("seed", SEEDS)
def test_elbo_terms_match_the_closed_form_of_a_linear_gaussian_model(seed):
    g = torch.Generator().manual_seed(seed)
    w, b, sigma, a, c, s = 1.5, -0.3, 0.7, 0.4, 0.1, 0.6
    model = LinearGaussian(w, b, sigma, a, c, s).double()
    x = torch.randn(3, 1, 1, generator=g, dtype=torch.float64).expand(3, 40000, 1).contiguous()
    terms = model.elbo(x, generator=g)
    mu = a * x[:, 0, 0] + c
    # E_q log N(x; w z + b, sigma^2) = log N(x; w mu + b, sigma^2) - w^2 s^2 / (2 sigma^2)
    recon = -0.5 * math.log(2 * math.pi * sigma**2) - (x[:, 0, 0] - w * mu - b) ** 2 / (2 * sigma**2) - w**2 * s**2 / (2 * sigma**2)
    kl = 0.5 * (s**2 + mu**2 - 1 - math.log(s**2))
    assert torch.allclose(terms.kl, kl, atol=1e-10)
    assert torch.allclose(terms.recon, recon, atol=0.02)  # MC error of a mean over 40,000 draws
    assert torch.allclose(terms.elbo, terms.recon - terms.kl) and torch.equal(terms.kl_global, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize("k", [1, 7])
def test_importance_sampling_is_exact_with_the_true_posterior(k):
    w, b, sigma = 1.2, 0.5, 0.8
    model = LinearGaussian(w, b, sigma, *_exact_posterior(w, b, sigma)).double()
    x = torch.linspace(-3, 3, 9, dtype=torch.float64).reshape(1, 9, 1)
    estimate = model.log_likelihood(x, n_samples=k, generator=torch.Generator().manual_seed(k))
    exact = torch.distributions.Normal(b, math.sqrt(w * w + sigma**2)).log_prob(x[..., 0])
    assert torch.allclose(estimate, exact, atol=1e-10)


def test_importance_sampling_tightens_with_k_under_a_poor_posterior():
    w, b, sigma = 1.2, 0.5, 0.8
    model = LinearGaussian(w, b, sigma, 0.0, 0.0, 1.0).double()  # q = the prior
    x = torch.full((1, 2000, 1), 1.7, dtype=torch.float64)
    exact = float(torch.distributions.Normal(b, math.sqrt(w * w + sigma**2)).log_prob(torch.tensor(1.7)))
    g = torch.Generator().manual_seed(0)
    one = model.log_likelihood(x, n_samples=1, generator=g)
    k1, k50 = float(one.mean()), float(model.log_likelihood(x, n_samples=50, generator=g).mean())
    # closed-form ELBO with q = p(z): E log N(1.7; w z + b, sigma^2) - 0
    elbo = -0.5 * math.log(2 * math.pi * sigma**2) - ((1.7 - b) ** 2 + w * w) / (2 * sigma**2)
    assert k1 < k50 < exact + 1e-3
    assert abs(k1 - elbo) < 4 * float(one.std()) / math.sqrt(one.numel())  # K = 1 is unbiased for the ELBO
    assert exact - k50 < 0.5 * (exact - k1)


def test_importance_log_likelihood_checks_shapes():
    with pytest.raises(BadInputError, match="one shape"):
        importance_log_likelihood(torch.zeros(3, 2), torch.zeros(2, 3))
