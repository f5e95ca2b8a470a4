"""The compiled generation loop (`etude.audio.compiled`) against the full forward pass and the torch loop,
at the decoder shapes of the study's presets."""

import numpy as np
import pytest
import torch

from etude.audio import WaveNet, compiled
from etude.audio.study import AmaeStudy
from etude.errors import BadInputError

pytest.importorskip("numba")


def decoder(preset: str, seed: int = 0) -> WaveNet:
    """The level-0 AMAE decoder of a study preset (conditioned on K-way codes every hops[0] samples)."""
    p = AmaeStudy.presets[preset]
    torch.manual_seed(seed)
    net = WaveNet(256, p.residual, 2 * p.residual, p.layers, p.stacks, cond_channels=p.codes, hop=p.hops[0],
                  scalar_input=p.scalar_input)
    return net.eval()


def codes(net: WaveNet, batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """One-hot codes [B, K, ceil(length / hop)], as the argmax bottleneck gives them."""
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(net.cond_channels, (batch, -(-length // net.hop)), generator=g)
    return torch.nn.functional.one_hot(index, net.cond_channels).transpose(1, 2).float()


LENGTH = {"quick": 300, "long": 300, "full": 80}


@pytest.mark.parametrize("preset", ["quick", "long", "full"])
@pytest.mark.parametrize("batch", [1, 16])
def test_compiled_logits_equal_the_full_forward_pass(preset, batch):
    net = decoder(preset)
    length = LENGTH[preset]
    x = torch.randint(256, (batch, length), generator=torch.Generator().manual_seed(1))
    cond = codes(net, batch, length)
    with torch.no_grad():
        full = net(x, cond)
    fast = net.compiled_logits(x, cond)
    assert fast.shape == full.shape == (batch, 256, length)
    assert full.std() > 0.05  # logits that differ between classes, so the comparison means something
    assert (fast - full).abs().max().item() <= 1e-5


@pytest.mark.parametrize("preset", ["quick", "long", "full"])
@pytest.mark.parametrize("batch", [1, 16])
def test_compiled_samples_equal_the_torch_loop(preset, batch):
    net = decoder(preset, seed=2)
    length = LENGTH[preset]
    cond = codes(net, batch, length, seed=3)
    a = net.generate(length, cond, batch=batch, generator=torch.Generator().manual_seed(4), backend="torch")
    b = net.generate(length, cond, batch=batch, generator=torch.Generator().manual_seed(4), backend="compiled")
    assert torch.equal(a, b)
    assert len(torch.unique(a)) > 10  # samples that vary


@pytest.mark.parametrize("temperature", [0.5, 1.0])
def test_compiled_samples_equal_the_torch_loop_across_noise_chunks(temperature):
    """2,100 steps cross two chunks of 1,024 pre-drawn uniforms; unconditional, another temperature."""
    torch.manual_seed(5)
    net = WaveNet(32, residual=6, skip=8, layers=5).eval()
    a = net.generate(2100, batch=2, temperature=temperature, generator=torch.Generator().manual_seed(6), backend="torch")
    b = net.generate(2100, batch=2, temperature=temperature, generator=torch.Generator().manual_seed(6),
                     backend="compiled")
    assert torch.equal(a, b)


def test_inverse_cdf_samples_the_softmax():
    """Frequencies of inverse-CDF draws from 40,000 uniforms against softmax(l / T) (binomial 5 sigma)."""
    logits = np.array([0.3, -1.0, 2.0, 0.0, 1.0], dtype=np.float32)
    cum = np.empty(5)
    u = np.random.default_rng(0).random(40_000)
    for temperature in (1.0, 0.7):
        drawn = np.array([compiled.inverse_cdf_py(logits, temperature, v, cum) for v in u])
        p = np.exp(logits / temperature) / np.exp(logits / temperature).sum()
        freq = np.bincount(drawn, minlength=5) / len(u)
        assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / len(u)))


def test_inverse_cdf_edges():
    cum = np.empty(3)
    logits = np.array([0.0, 0.0, 0.0], dtype=np.float32)
    assert compiled.inverse_cdf_py(logits, 1.0, 0.0, cum) == 0
    assert compiled.inverse_cdf_py(logits, 1.0, 0.34, cum) == 1
    assert compiled.inverse_cdf_py(logits, 1.0, 1 - 1e-16, cum) == 2


def test_fast_tanh_is_accurate():
    x = np.linspace(-12, 12, 20_001).astype(np.float32)
    approx = compiled.tanh(x)
    assert np.abs(approx - np.tanh(x.astype(np.float64))).max() < 1e-6


def test_without_numba_the_torch_loop_runs_with_one_notice(monkeypatch, capsys):
    monkeypatch.setattr(compiled, "numba", None)
    monkeypatch.setattr(compiled, "NOTICE_SHOWN", False)
    torch.manual_seed(0)
    net = WaveNet(16, residual=4, skip=4, layers=3).eval()
    assert not net.compiles()
    first = net.generate(20, generator=torch.Generator().manual_seed(0))
    net.generate(20, generator=torch.Generator().manual_seed(0))
    err = capsys.readouterr().err
    assert err.count("numba is not installed") == 1 and err.count("\n") == 1
    with pytest.raises(BadInputError, match="numba"):
        net.generate(20, backend="compiled")
    monkeypatch.setattr(compiled, "numba", pytest.importorskip("numba"))
    assert torch.equal(first, net.generate(20, generator=torch.Generator().manual_seed(0), backend="compiled"))


def test_backend_is_checked():
    net = WaveNet(16, residual=4, skip=4, layers=3).eval()
    with pytest.raises(BadInputError, match="backend"):
        net.generate(5, backend="gpu")
