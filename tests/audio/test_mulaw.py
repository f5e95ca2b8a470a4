import math

import pytest
import torch

from etude.audio import mulaw_decode, mulaw_encode
from etude.errors import BadInputError


@pytest.mark.parametrize("channels", [16, 256])
def test_classes_round_trip_exactly(channels):
    q = torch.arange(channels)
    assert torch.equal(mulaw_encode(mulaw_decode(q, channels), channels), q)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_audio_round_trip_within_half_a_bin(seed):
    x = torch.rand(5000, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    y = mulaw_decode(mulaw_encode(x))
    mu = 255
    # f(x) is quantized to bins of width 2/mu; |f^{-1}'| <= (1+mu) ln(1+mu)/mu * (1+mu)^|f|/(1+mu)
    f = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    slope = math.log1p(mu) / mu * (1 + mu) ** (f.abs() + 1 / mu)
    assert ((y - x).abs() <= slope / mu + 1e-6).all()
    assert (y - x).abs().max() < 0.022  # ln(256) * 256 / 255 / 255 near |x| = 1


def test_endpoints_and_silence():
    assert mulaw_encode(torch.tensor([-1.0, 1.0])).tolist() == [0, 255]
    assert mulaw_decode(mulaw_encode(torch.tensor([0.0]))).abs().item() < 1e-3
    assert mulaw_decode(torch.tensor([0, 255])).tolist() == pytest.approx([-1.0, 1.0])


@pytest.mark.parametrize("bad", [torch.tensor([1.5]), torch.tensor([float("nan")]), torch.tensor([1, 2])])
def test_encode_rejects_bad_audio(bad):
    with pytest.raises(BadInputError):
        mulaw_encode(bad)


@pytest.mark.parametrize("bad", [torch.tensor([256]), torch.tensor([-1]), torch.tensor([0.5])])
def test_decode_rejects_bad_classes(bad):
    with pytest.raises(BadInputError):
        mulaw_decode(bad)


def test_channels_validated():
    with pytest.raises(BadInputError, match="channels"):
        mulaw_encode(torch.zeros(3), channels=1)
