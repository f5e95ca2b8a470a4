"""The free-running calibration and the decoder's prediction error (`etude.audio.ceiling`)."""

import numpy as np
import pytest
import torch

from etude.audio import WaveNet
from etude.audio.ceiling import blockwise, calibrate, decoder_prediction_error_db, lpc
from etude.audio.mulaw import mulaw_decode, mulaw_encode
from etude.errors import BadInputError


def test_lpc_recovers_an_ar2_process():
    """x_t = 1.6 x_{t-1} - 0.8 x_{t-2} + e_t: the order-2 predictor is (1.6, -0.8) and its error is e's power."""
    from scipy.signal import lfilter

    e = np.random.default_rng(0).standard_normal(60_000) * 0.01
    x = lfilter([1.0], [1.0, -1.6, 0.8], e)
    a = lpc(x, 2)
    assert np.allclose(a, [1.6, -0.8], atol=0.01)
    error, out = blockwise(x, 2, 1.0, block=len(x))
    assert error == pytest.approx(10 * np.log10(np.mean(e**2) / np.mean(x**2)), abs=0.1)
    assert len(out) == len(x) and np.isclose(np.sqrt(np.mean(out**2)), np.sqrt(np.mean(x**2)), rtol=0.05)


def test_calibration_on_tones_and_on_noise():
    t = np.arange(16000) / 16000
    tone = sum(0.2 / k * np.sin(2 * np.pi * 220 * k * t + k) for k in (1, 2, 3, 5))
    tone = tone + 0.003 * np.random.default_rng(0).standard_normal(len(t))
    cal = calibrate(tone)
    assert cal["needed_db"] is not None and cal["needed_db"] < -15  # partials need a good predictor
    errors = [row["error_db"] for row in cal["sweep"]]
    assert all(row["tonal"] == (row["local_flatness"] <= cal["line"]) for row in cal["sweep"])
    assert max(errors) > cal["needed_db"]  # worse predictors (shrunk poles) lose the partials
    noise = np.random.default_rng(1).standard_normal(8000) * 0.1
    assert calibrate(noise)["needed_db"] is None  # no partials to keep
    with pytest.raises(BadInputError):
        calibrate(np.zeros(1000))


def test_decoder_prediction_error():
    """A decoder whose softmax is a point mass on the true next class predicts with the quantization error
    only; an untrained decoder (near-uniform softmax) predicts the mean amplitude, about 0 dB."""
    t = np.arange(2048) / 16000
    x = mulaw_encode(torch.from_numpy(0.5 * np.sin(2 * np.pi * 200 * t)).float(), 256).unsqueeze(0)
    torch.manual_seed(0)
    untrained = WaveNet(256, residual=4, skip=4, layers=3).eval()
    assert abs(decoder_prediction_error_db(untrained, x)) < 1.5

    class Oracle(torch.nn.Module):
        classes = 256

        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(1, 1)

        def eval(self):
            return self

        def forward(self, crops, cond=None):
            nxt = torch.cat([crops[:, 1:], crops[:, -1:]], 1)
            return torch.nn.functional.one_hot(nxt, 256).transpose(1, 2).float() * 100

    assert decoder_prediction_error_db(Oracle(), x) < -100
    levels = mulaw_decode(torch.arange(256), 256)
    assert torch.all(levels[:-1] < levels[1:])
