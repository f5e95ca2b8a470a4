"""Bruno: change of variables, exchangeability, few-shot scores, anomaly scores, sampling, bad input."""

import math

import pytest
import torch

from etude.errors import BadInputError
from etude.exchangeable import Bruno, GaussianProcess, StudentTProcess
from etude.flows import Flatten, FlowSequence, LogitTransform, RealNVP

SEEDS = [0, 1, 2]


def _model(seed=0, flow="realnvp", process="tp", dtype=torch.float64):
    torch.manual_seed(seed)
    m = Bruno.build((1, 4, 4), levels=17, flow=flow, process=process, hidden=4, layers=2, corr=0.3, nu=6.0)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.flow.named_parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return m.to(dtype)


def _images(*lead, seed=0):
    return torch.rand(*lead, 1, 4, 4, generator=torch.Generator().manual_seed(seed + 7), dtype=torch.float64) * 17


@pytest.mark.parametrize("flow", ["realnvp", "dense", "none"])
@pytest.mark.parametrize("seed", SEEDS)
def test_sequence_log_prob_is_change_of_variables(flow, seed):
    m = _model(seed, flow)
    x = _images(2, 5, seed=seed)
    z, log_det = m.flow(x.reshape(10, 1, 4, 4))
    expected = m.process.sequence_log_prob(z.reshape(2, 5, 16)) + log_det.reshape(2, 5)
    got = m.sequence_log_prob(x)
    assert torch.allclose(got, expected, atol=1e-12)
    assert torch.allclose(m.bits_per_dim(x), -got / (16 * math.log(2)))
    assert torch.allclose(m.loss(x), -got.mean() / 16)


@pytest.mark.parametrize("seed", SEEDS)
def test_joint_density_is_exchangeable(seed):
    m = _model(seed)
    x = _images(3, 6, seed=seed)
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(seed))
    assert torch.allclose(m.sequence_log_prob(x).sum(1), m.sequence_log_prob(x[:, perm]).sum(1), atol=1e-10)


def test_no_flow_model_density_by_hand():
    """flow='none': log p = GP log-density of logit pixels + the logit transform's log-det."""
    flow = FlowSequence([LogitTransform(17, 0.05), Flatten((1, 4, 4))])
    m = Bruno(flow, GaussianProcess(16, dtype=torch.float64), (1, 4, 4))
    x = _images(1, 1)
    p = 0.025 + 0.95 * x.flatten() / 17
    y = torch.log(p / (1 - p))
    expected = (-0.5 * (math.log(2 * math.pi) + y ** 2) + math.log(0.95 / 17) - torch.log(p * (1 - p))).sum()
    assert torch.allclose(m.sequence_log_prob(x).flatten(), expected.reshape(1), atol=1e-10)


def test_conditional_log_prob_and_classify_agree():
    m = _model(1)
    support = _images(2, 3, 2, seed=1)  # [E=2, ways=3, shots=2]
    query = _images(2, 4, seed=2)  # [E=2, q=4]
    scores = m.classify(support, query)
    assert scores.shape == (2, 4, 3)
    for e in range(2):
        for w in range(3):
            direct = m.conditional_log_prob(support[e, w].unsqueeze(0), query[e].unsqueeze(0))[0]
            assert torch.allclose(scores[e, :, w], direct, atol=1e-10)
            seq = torch.stack([m.sequence_log_prob(torch.cat([support[e, w], query[e, q: q + 1]]).unsqueeze(0))[0, -1]
                               for q in range(4)])
            assert torch.allclose(direct, seq, atol=1e-10)


def test_classify_picks_the_class_that_contains_the_query():
    m = _model(2, flow="none")
    with torch.no_grad():
        m.process.b.fill_(2.0)  # strong within-set correlation
    support = _images(1, 4, 3, seed=3)
    query = support[:, :, 0]  # each query is a support image of its own class
    pred = m.classify(support, query).argmax(-1)
    assert torch.equal(pred, torch.arange(4).unsqueeze(0))


def test_anomaly_scores():
    m = _model(0)
    x = _images(2, 5)
    scores = m.anomaly_scores(x)
    z, _ = m.encode(x)
    assert torch.allclose(scores[:, 0], torch.zeros(2, dtype=torch.float64), atol=1e-12)  # nothing observed: the prior
    assert torch.allclose(scores, m.process.sequence_log_prob(z) - m.process.prior_log_prob(z), atol=1e-12)
    m = _model(0, flow="none")
    with torch.no_grad():
        m.process.b.fill_(2.0)  # corr 0.88: a set of near-copies predicts its next member sharply
    template = _images(1, 1, seed=4)
    noise = torch.rand(1, 5, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 0.5
    member = (template + noise).clamp(0, 16.9)
    outlier = member.clone()
    outlier[:, -1] = 16.9 - template[:, 0]
    assert m.anomaly_scores(member)[0, -1] > 0 > m.anomaly_scores(outlier)[0, -1]


@pytest.mark.parametrize("process", ["tp", "gp"])
def test_sampling_is_deterministic_and_in_range(process):
    m = _model(0, process=process)
    context = _images(3)
    a = m.sample(context, 6, torch.Generator().manual_seed(5))
    b = m.sample(context, 6, torch.Generator().manual_seed(5))
    assert a.shape == (6, 1, 4, 4) and torch.equal(a, b)
    # the logit's inverse reaches (-alpha/2, 1 + alpha/2) * 17 / (1 - alpha) beyond [0, 17)
    assert a.min() > -0.025 * 17 / 0.95 and a.max() < 17 * 1.025 / 0.95
    prior = m.sample(None, 4, torch.Generator().manual_seed(5))
    assert prior.shape == (4, 1, 4, 4) and m.process.n == 0


def test_encode_decode_round_trip():
    m = _model(1)
    x = _images(2, 3)
    z, ld = m.encode(x)
    assert z.shape == (2, 3, 16) and ld.shape == (2, 3)
    assert torch.allclose(m.decode(z), x, atol=1e-9)


def test_bad_input_raises():
    with pytest.raises(BadInputError, match="flow"):
        Bruno.build(flow="glow")
    with pytest.raises(BadInputError, match="process"):
        Bruno.build(process="dp")
    with pytest.raises(BadInputError, match="process.dim"):
        Bruno(RealNVP((1, 4, 4), hidden=2), StudentTProcess(15), (1, 4, 4))
    with pytest.raises(BadInputError, match="Bijection"):
        Bruno(torch.nn.Identity(), StudentTProcess(16), (1, 4, 4))
    m = _model(0)
    with pytest.raises(BadInputError, match=r"expected shape \[\., \., 1, 4, 4\], found \[2, 1, 4, 4\]"):
        m.sequence_log_prob(_images(2))
    with pytest.raises(BadInputError, match="episodes"):
        m.classify(_images(2, 3, 1), _images(3, 1))
    with pytest.raises(BadInputError, match="num"):
        m.sample(None, 0)
