"""Real NVP: exact inverses and log-determinants equal to autograd Jacobians (float64, small inputs)."""

import math

import pytest
import torch

from etude.errors import BadInputError
from etude.flows import (
    ConvNet,
    DenseRealNVP,
    Flatten,
    FlowSequence,
    LogitTransform,
    MLPNet,
    MaskedAffineCoupling,
    RealNVP,
    Squeeze,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    dequantize,
)

SEEDS = [0, 1, 2]


def _randomize(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Couplings start as the identity (zero last layer); give every parameter a random value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _jacobian_log_det(flow, x):
    """log|det J| per example from the autograd Jacobian of the flattened batch map (block diagonal)."""
    b, d = x.shape[0], x[0].numel()

    def f(v):
        return flow(v.reshape(x.shape))[0].reshape(-1)

    jac = torch.autograd.functional.jacobian(f, x.reshape(-1), vectorize=True).reshape(b, d, b, d)
    return torch.stack([torch.linalg.slogdet(jac[i, :, i])[1] for i in range(b)])


def _flows(seed):
    c = (2, 4, 4)
    return {
        "checkerboard": MaskedAffineCoupling(checkerboard_mask(4, 4, seed % 2), ConvNet(2, 4, 1), c),
        "channel": MaskedAffineCoupling(channel_mask(2, seed % 2), ConvNet(2, 4, 1), c),
        "squeeze": Squeeze(),
        "logit": LogitTransform(levels=17, alpha=0.05),
        "realnvp": RealNVP(c, hidden=4, blocks=1, scales=2, couplings=2, final_couplings=2),
        "realnvp_3_scales": RealNVP((1, 4, 4), hidden=4, blocks=0, scales=3, couplings=1, final_couplings=2),
        "dense": DenseRealNVP(c, hidden=8, layers=3),
        "chain": FlowSequence([LogitTransform(17), RealNVP(c, hidden=4, scales=2, couplings=1, final_couplings=1)]),
    }


FLOW_NAMES = list(_flows(0))


def _input(name, seed, shape=(2, 4, 4)):
    g = torch.Generator().manual_seed(seed + 100)
    if name in ("logit", "chain"):
        return torch.rand(3, *shape, generator=g, dtype=torch.float64) * 17
    if name == "realnvp_3_scales":
        return torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    return torch.randn(3, *shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name", FLOW_NAMES)
@pytest.mark.parametrize("seed", SEEDS)
def test_log_det_equals_autograd_jacobian(name, seed):
    flow = _randomize(_flows(seed)[name].double(), seed)
    x = _input(name, seed)
    _, log_det = flow(x)
    assert log_det.shape == (3,)
    expected = _jacobian_log_det(flow, x)
    assert torch.allclose(log_det, expected, rtol=0, atol=1e-9), (log_det, expected)
    if name not in ("squeeze",):
        assert log_det.abs().max() > 1e-3  # a non-trivial Jacobian was tested


@pytest.mark.parametrize("name", FLOW_NAMES)
@pytest.mark.parametrize("seed", SEEDS)
def test_inverse_of_forward_is_identity(name, seed):
    flow = _randomize(_flows(seed)[name].double(), seed)
    x = _input(name, seed)
    z, _ = flow(x)
    assert torch.allclose(flow.inverse(z), x, rtol=0, atol=1e-10)
    assert torch.allclose(flow(flow.inverse(z))[0], z, rtol=0, atol=1e-9)


def test_realnvp_shapes_and_identity_at_init():
    flow = RealNVP((1, 8, 8), hidden=4)
    x = torch.randn(5, 1, 8, 8)
    z, log_det = flow(x)
    assert z.shape == (5, 64) and log_det.shape == (5,)
    assert torch.allclose(log_det, torch.zeros(5))  # zero-initialised couplings: a permutation
    assert torch.allclose(torch.sort(z, dim=1).values, torch.sort(x.flatten(1), dim=1).values)


def test_squeeze_moves_each_2x2_block_into_channels():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y, _ = Squeeze()(x)
    assert y.shape == (1, 4, 2, 2)
    assert y[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]


def test_masks():
    m = checkerboard_mask(2, 3)
    assert m.tolist() == [[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]
    assert torch.equal(checkerboard_mask(2, 3, 1), 1 - m)
    assert channel_mask(4).flatten().tolist() == [1.0, 1.0, 0.0, 0.0]
    assert alternating_mask(5, 1).tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]


def test_coupling_leaves_masked_coordinates_unchanged():
    flow = _randomize(MaskedAffineCoupling(alternating_mask(6), MLPNet(6, 8, 1)).double(), 0)
    x = torch.randn(4, 6, dtype=torch.float64)
    y, _ = flow(x)
    assert torch.equal(y[:, ::2], x[:, ::2]) and not torch.allclose(y[:, 1::2], x[:, 1::2])


def test_logit_log_det_closed_form_and_dequantize():
    flow = LogitTransform(levels=17, alpha=0.1)
    x = torch.tensor([[0.5, 8.5, 16.5]], dtype=torch.float64)
    p = 0.05 + 0.9 * x / 17
    _, ld = flow(x)
    expected = (math.log(0.9 / 17) - torch.log(p * (1 - p))).sum()
    assert torch.allclose(ld, expected.reshape(1))
    levels = torch.randint(0, 17, (1000,)).double()
    d = dequantize(levels, torch.Generator().manual_seed(0))
    assert ((d - levels) >= 0).all() and ((d - levels) < 1).all() and (d - levels).std() > 0.2


def test_flatten():
    f = Flatten((1, 2, 2))
    x = torch.randn(3, 1, 2, 2)
    y, ld = f(x)
    assert y.shape == (3, 4) and torch.equal(f.inverse(y), x) and torch.equal(ld, torch.zeros(3))


@pytest.mark.parametrize("build, match", [
    (lambda: RealNVP((1, 6, 6), scales=3), "divisible"),
    (lambda: RealNVP((1, 8)), "shape"),
    (lambda: RealNVP(hidden=0), "hidden"),
    (lambda: DenseRealNVP(layers=0), "layers"),
    (lambda: LogitTransform(alpha=1.0), "alpha"),
    (lambda: LogitTransform(levels=-1), "levels"),
    (lambda: channel_mask(3), "even"),
    (lambda: MaskedAffineCoupling(torch.ones(3, 1, 1), ConvNet(2), (2, 4, 4)), "broadcast"),
])
def test_bad_construction_raises(build, match):
    with pytest.raises(BadInputError, match=match):
        build()


def test_bad_inputs_raise():
    flow = RealNVP((1, 8, 8), hidden=4)
    with pytest.raises(BadInputError, match=r"expected shape \[batch, 1, 8, 8\], found \[2, 1, 4, 4\]"):
        flow(torch.zeros(2, 1, 4, 4))
    with pytest.raises(BadInputError, match="floating"):
        flow(torch.zeros(2, 1, 8, 8, dtype=torch.long))
    with pytest.raises(BadInputError, match="z"):
        flow.inverse(torch.zeros(2, 63))
    with pytest.raises(BadInputError, match="floating"):
        dequantize(torch.zeros(3, dtype=torch.long))
    with pytest.raises(BadInputError, match="even"):
        Squeeze()(torch.zeros(1, 1, 3, 4))
