import pytest
import torch

from etude.audio import WaveNet, receptive_field, upsample_codes
from etude.errors import BadInputError


def tiny(seed: int, cond: int = 0, hop: int = 4, layers: int = 4, stacks: int = 2, dtype=torch.float32) -> WaveNet:
    torch.manual_seed(seed)
    return WaveNet(classes=16, residual=8, skip=12, layers=layers, stacks=stacks, cond_channels=cond, hop=hop).to(dtype).eval()


def inputs(seed: int, batch: int = 2, length: int = 48, cond: int = 0, hop: int = 4, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(16, (batch, length), generator=g)
    c = torch.randn(batch, cond, -(-length // hop), generator=g, dtype=dtype) if cond else None
    return x, c


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cond", [0, 3])
def test_cached_logits_equal_full_forward(seed, cond):
    net = tiny(seed, cond)
    x, c = inputs(seed, cond=cond)
    with torch.no_grad():
        full = net(x, c)
    cached = net.cached_logits(x, c)
    assert cached.shape == full.shape == (2, 16, 48)
    assert (cached - full).abs().max().item() < 1e-5


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("cond", [0, 3])
def test_cached_sampling_equals_naive_sampling(seed, cond):
    net = tiny(seed, cond, dtype=torch.float64)
    _, c = inputs(seed, batch=1, length=24, cond=cond, dtype=torch.float64)
    fast = net.generate(24, c, generator=torch.Generator().manual_seed(seed))
    slow = net.generate(24, c, generator=torch.Generator().manual_seed(seed), naive=True)
    assert torch.equal(fast, slow)


@pytest.mark.parametrize("t", [0, 7, 20, 39])
def test_causality(t):
    net = tiny(0, cond=0)
    x, _ = inputs(1, batch=1, length=40)
    y = x.clone()
    y[0, t] = (x[0, t] + 5) % 16
    with torch.no_grad():
        a, b = net(x), net(y)
    assert torch.equal(a[..., :t], b[..., :t])  # nothing before t moves
    assert not torch.allclose(a[..., t], b[..., t])  # and the output at t does


@pytest.mark.parametrize("layers,stacks", [(3, 1), (4, 2), (5, 1)])
def test_receptive_field_as_computed(layers, stacks):
    net = tiny(0, layers=layers, stacks=stacks)
    rf = net.receptive_field
    assert rf == receptive_field([2 ** i for i in range(layers)] * stacks) == stacks * (2 ** layers - 1) + 1
    length, t = rf + 20, rf + 10
    x, _ = inputs(2, batch=1, length=length)
    h = net.embed(x).detach().requires_grad_(True)
    net.embed.forward = lambda _x, h=h: h  # differentiate the output at t w.r.t. every input position
    out = net(x)[0, :, t].sum()
    (grad,) = torch.autograd.grad(out, h)
    seen = (grad[0].abs().sum(-1) > 0).nonzero().flatten()
    assert seen.min().item() == t - rf + 1 and seen.max().item() == t


def test_upsample_aligns_codes_with_the_predicted_sample():
    cond = torch.arange(3.0).reshape(1, 1, 3)
    assert upsample_codes(cond, 4, 12)[0, 0].tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]


def test_nll_of_uniform_logits_is_log2_classes():
    net = tiny(0)
    for p in (net.out2.weight, net.out2.bias):
        torch.nn.init.zeros_(p)
    x, _ = inputs(0)
    assert net.nll_bits(x).item() == pytest.approx(4.0, abs=1e-6)


def test_bad_inputs():
    net = tiny(0, cond=3)
    x, c = inputs(0, cond=3)
    with pytest.raises(BadInputError, match="conditional"):
        net(x)
    with pytest.raises(BadInputError, match="cond expected"):
        net(x, c[:, :2])
    with pytest.raises(BadInputError, match="lie in"):
        net(x + 16, c)
    with pytest.raises(BadInputError, match="integer tensor"):
        net(x.float(), c)
    with pytest.raises(BadInputError, match="eval mode"):
        net.train().cached_logits(x, c)
    with pytest.raises(BadInputError, match="layers"):
        WaveNet(layers=0)
    with pytest.raises(BadInputError, match="length"):
        tiny(0).generate(0)


@pytest.mark.parametrize("cond", [0, 3])
def test_scalar_input_cached_logits_equal_full_forward(cond):
    torch.manual_seed(4)
    net = WaveNet(classes=16, residual=8, skip=12, layers=4, stacks=2, cond_channels=cond, hop=4,
                  scalar_input=True).eval()
    x, c = inputs(4, cond=cond)
    with torch.no_grad():
        full = net(x, c)
        plain = net.embed(x) 
    assert (net.cached_logits(x, c) - full).abs().max().item() < 1e-5
    table = net.input_table().detach()
    y = torch.linspace(-1, 1, 16)
    assert torch.allclose(table - net.embed.weight.detach(), y[:, None] * net.scalar.detach()[None])  # y_c w per class
    assert not torch.allclose(table[x], plain)  # the amplitude really enters
