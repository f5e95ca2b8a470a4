"""Model log joints against torch.distributions, exact conjugate posteriors, shapes, data and bad input."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, MultivariateNormal, Normal, Poisson

from etude.errors import BadInputError
from etude.vi import (
    MODELS,
    BayesianLinearRegression,
    BayesianLogisticRegression,
    BayesianNeuralNetwork,
    HierarchicalLinearRegression,
    PoissonGLM,
    load_breast_cancer,
    load_diabetes,
    make_model,
)


@pytest.fixture(scope="module")
def models():
    return {name: make_model(name) for name in MODELS}


def test_dimensions(models):
    assert {name: m.dim for name, m in models.items()} == {
        "linear": 11, "logistic": 31, "hierarchical": 105, "poisson": 33, "bnn": 601}


@pytest.mark.parametrize("name", list(MODELS))
def test_batched_evaluation_equals_one_by_one(models, name):
    model = models[name]
    z = 0.1 * torch.randn(2, 3, model.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    batched = model(z)
    assert batched.shape == (2, 3)
    single = torch.stack([torch.stack([model(z[i, j]) for j in range(3)]) for i in range(2)])
    assert torch.allclose(batched, single, rtol=1e-12, atol=1e-9)


def _z(model, seed=0, scale=0.3):
    return scale * torch.randn(model.dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_linear_and_logistic_match_torch_distributions(models):
    lin, log = models["linear"], models["logistic"]
    z = _z(lin)
    ref = Normal(lin.x @ z[:-1] + z[-1], 0.7).log_prob(lin.y).sum() + Normal(0.0, 1.0).log_prob(z).sum()
    assert float(lin(z)) == pytest.approx(float(ref), rel=1e-12)
    z = _z(log)
    ref = Bernoulli(logits=log.x @ z[:-1] + z[-1]).log_prob(log.y).sum() + Normal(0.0, 1.0).log_prob(z).sum()
    assert float(log(z)) == pytest.approx(float(ref), rel=1e-12)


def test_hierarchical_matches_torch_distributions(models):
    m = models["hierarchical"]
    z = _z(m)
    j = m.groups
    a, b = z[5:5 + j], z[5 + j:]
    ref = (Normal(0.0, 1.0).log_prob(z[:5]).sum()
           + Normal(z[0], z[2].exp()).log_prob(a).sum() + Normal(z[1], z[3].exp()).log_prob(b).sum()
           + Normal(a[m.group] + b[m.group] * m.x, z[4].exp()).log_prob(m.y).sum())
    assert float(m(z)) == pytest.approx(float(ref), rel=1e-12)


def test_poisson_glm_matches_torch_distributions(models):
    m = models["poisson"]
    z = _z(m)
    alpha, beta = z[3:3 + m.levels_a], z[3 + m.levels_a:]
    rate = (m.log_exposure + z[0] + alpha[m.cell_a] + beta[m.cell_b]).exp()
    ref = (Normal(0.0, 2.0).log_prob(z[0]) + Normal(0.0, 1.0).log_prob(z[1:3]).sum()
           + Normal(0.0, z[1].exp()).log_prob(alpha).sum() + Normal(0.0, z[2].exp()).log_prob(beta).sum()
           + Poisson(rate).log_prob(m.y).sum())
    assert float(m(z)) == pytest.approx(float(ref), rel=1e-10)  # torch computes log y! by another route


def test_bnn_matches_an_explicit_network(models):
    m = models["bnn"]
    z = _z(m)
    p, h = 10, 50
    w1, b1, w2, b2 = z[:p * h].reshape(p, h), z[p * h:p * h + h], z[p * h + h:p * h + 2 * h], z[-1]
    out = torch.tanh(m.x @ w1 + b1) @ w2 + b2
    ref = Normal(out, 0.7).log_prob(m.y).sum() + Normal(0.0, 1.0).log_prob(z).sum()
    assert float(m(z)) == pytest.approx(float(ref), rel=1e-12)
    init = m.initial_loc(torch.Generator().manual_seed(0))
    assert init.shape == (601,) and float(init[:p * h].std()) == pytest.approx(1 / math.sqrt(p), rel=0.15)


def test_conjugate_posterior_and_evidence_are_exact():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(15, 2, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([0.5, -1.0], dtype=torch.float64) + 0.2 * torch.randn(15, generator=gen, dtype=torch.float64)
    model = BayesianLinearRegression(x, y, noise_scale=0.5, prior_scale=2.0)
    mean, precision = model.posterior()
    # Bayes: log p(y) = log p(y, z) - log p(z | y) at any z
    for seed in range(3):
        z = _z(model, seed, 1.0)
        log_post = MultivariateNormal(mean, precision_matrix=precision).log_prob(z)
        assert float(model(z) - log_post) == pytest.approx(model.log_evidence(), abs=1e-9)
    mu, sigma = model.mean_field_optimum()
    assert torch.allclose(mu, mean) and torch.allclose(sigma, precision.diagonal().rsqrt())


def test_data_are_standardized_and_synthetic_data_fixed_by_seed():
    x, y = load_diabetes()
    assert x.shape == (442, 10) and torch.allclose(x.mean(0), torch.zeros(10, dtype=torch.float64), atol=1e-10)
    assert float(y.std()) == pytest.approx(1.0)
    x, y = load_breast_cancer()
    assert x.shape == (569, 30) and set(y.unique().tolist()) == {0.0, 1.0} and int(y.sum()) == 357
    assert torch.equal(PoissonGLM(data_seed=4).y, PoissonGLM(data_seed=4).y)
    assert not torch.equal(HierarchicalLinearRegression(data_seed=1).y, HierarchicalLinearRegression(data_seed=2).y)


def test_float32_data_give_float32_log_joints():
    model = BayesianNeuralNetwork(*load_diabetes(torch.float32))
    assert model(torch.zeros(2, model.dim)).dtype == torch.float32


@pytest.mark.parametrize("call, match", [
    (lambda: BayesianLinearRegression(torch.zeros(5), torch.zeros(5)), "x must be a tensor \\[n, p\\]"),
    (lambda: BayesianLinearRegression(torch.zeros(5, 2), torch.zeros(4)), "y must be a tensor \\[n\\] with n = 5"),
    (lambda: BayesianLogisticRegression(torch.zeros(3, 2), torch.tensor([0.0, 2.0, 1.0])), "only 0 and 1"),
    (lambda: BayesianLinearRegression(noise_scale=0.0), "noise_scale must be a number > 0"),
    (lambda: BayesianNeuralNetwork(hidden=0), "hidden must be an int >= 1"),
    (lambda: HierarchicalLinearRegression(groups=0), "groups must be an int >= 1"),
    (lambda: make_model("gp"), "model must be one of"),
    (lambda: make_model("linear")(torch.zeros(3, 10)), "z must have last dimension 11, got shape \\(3, 10\\)"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(BadInputError, match=match):
        call()
