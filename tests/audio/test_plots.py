import numpy as np
import pytest

from etude.audio.plots import log_spectrogram, plot_spectrogram, spectral_flatness


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spectral_flatness_separates_noise_from_tones(seed):
    rng = np.random.default_rng(seed)
    assert spectral_flatness(rng.standard_normal(8000)) == pytest.approx(0.56, abs=0.03)
    tone = np.sin(2 * np.pi * rng.uniform(200, 2000) / 16000 * np.arange(8000))
    assert spectral_flatness(tone) < 0.01


def test_spectrogram_shape_and_plot(tmp_path):
    tone = np.sin(2 * np.pi * 1000 / 16000 * np.arange(4000))
    spec = log_spectrogram(tone)
    assert spec.shape == (257, 4000 // 128 + 1)
    assert spec[:, 10].argmax() == 32  # 1 kHz = bin 1000 / (16000 / 512)
    path = plot_spectrogram({"tone": tone, "short": tone[:100]}, tmp_path / "s.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
