import math

import numpy as np
import pytest
import torch

from etude.audio.metrics import (audio_metrics, chroma_agreement, chromagram, judge_reconstruction, judge_sample,
                                 local_flatness, log_mel, log_mel_distance, mel_filterbank, mulaw_round_trip, spectral_flatness,
                                 white_noise_like)
from etude.errors import BadInputError

RATE = 16_000


def sine(freq: float, seconds: float = 0.5, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def piano_like(notes=(60, 64, 67, 72, 65, 69), seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Struck notes: decaying harmonic partials, one note onset every 1/len(notes) of the clip."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n)
    step = n // len(notes)
    for i, note in enumerate(notes):
        f0 = 440.0 * 2 ** ((note - 69) / 12)
        t = np.arange(n - i * step) / RATE
        tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.28)) / k ** 1.5 for k in range(1, 6))
        out[i * step:] += 0.2 * tone * np.exp(-3 * t)
    return (out / np.abs(out).max() * 0.8).astype(np.float32)


def test_flatness_of_white_noise_and_of_a_tone():
    noise = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.1
    assert spectral_flatness(noise) == pytest.approx(0.56, abs=0.03)
    assert spectral_flatness(sine(440.0)) < 1e-3


@pytest.mark.parametrize("freq,pitch_class", [(440.0, 9), (261.63, 0), (392.0, 7), (830.61, 8)])
def test_chroma_of_a_sine_peaks_at_its_pitch_class(freq, pitch_class):
    chroma, energy = chromagram(sine(freq))
    assert chroma.shape[0] == 12 and bool((energy > 0).all())
    assert int(chroma.sum(1).argmax()) == pitch_class
    assert torch.allclose(chroma.sum(0), torch.ones(chroma.shape[1], dtype=chroma.dtype))
    assert chroma_agreement(sine(freq), sine(freq)) == pytest.approx(1.0)
    assert chroma_agreement(sine(freq), sine(freq * 2 ** (6 / 12))) < 0.2  # a tritone away: other classes


def test_mel_filters_peak_at_their_centres_and_a_sine_lands_in_its_filter():
    bank = mel_filterbank(1024, 64, RATE)
    assert bank.shape == (64, 513) and float(bank.max()) <= 1.0 and bool((bank >= 0).all())
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    centres = 700 * (10 ** (np.linspace(mel(40.0), mel(8000.0), 66)[1:-1] / 2595) - 1)
    for k in (5, 20, 40):
        spectrum = log_mel(sine(float(centres[k]))).mean(1)
        assert int(spectrum.argmax()) == k


def test_log_mel_distance_closed_forms():
    noise = np.random.default_rng(1).standard_normal(RATE).astype(np.float32) * 0.2
    assert log_mel_distance(noise, noise) == 0.0
    # halving the amplitude lowers every mel bin (all above the floor) by 20 log10(2) dB
    assert log_mel_distance(noise, noise * 0.5) == pytest.approx(20 * math.log10(2), abs=1e-6)
    assert log_mel_distance(noise, noise * 0.5) == pytest.approx(log_mel_distance(noise * 0.5, noise), abs=1e-9)
    with pytest.raises(BadInputError):
        log_mel(np.array([0.0, np.nan, 1.0]))


def test_noise_and_constants_fail_every_audio_criterion_that_a_faithful_copy_passes():
    reference = piano_like()
    other = piano_like(notes=(62, 66, 69, 74, 67, 71), seed=1)
    noise, constant, silence = white_noise_like(reference, 3), np.full_like(reference, 0.2), np.zeros_like(reference)
    # the criteria can pass: the 8-bit round trip reconstructs, another piano-like clip passes as a sample
    assert judge_reconstruction(reference, mulaw_round_trip(reference))[0]
    assert judge_sample(reference, other)[0]
    for bad in (noise, constant, silence, np.clip(reference + 0.3 * white_noise_like(reference, 4), -1, 1)):
        assert not judge_reconstruction(reference, bad)[0]
        assert not judge_sample(reference, bad)[0]
    assert not judge_reconstruction(reference, other)[0]  # piano, but not these notes: chroma disagrees
    assert not judge_sample(reference, np.array([np.nan] * 100))[0]
    # noise shaped to the reference's spectral envelope: right envelope and level, no partials
    spectrum = np.fft.rfft(reference)
    envelope = np.convolve(np.abs(spectrum), np.ones(64) / 64, mode="same")
    phase = np.fft.rfft(white_noise_like(reference, 5))
    shaped = np.fft.irfft(phase / np.abs(phase) * envelope, n=len(reference)).astype(np.float32)
    shaped *= np.sqrt(np.mean(reference ** 2) / np.mean(shaped ** 2))
    assert spectral_flatness(shaped) < 10 * spectral_flatness(mulaw_round_trip(reference))  # flatness alone is fooled
    assert not judge_sample(reference, shaped)[0] and not judge_reconstruction(reference, shaped)[0]


def test_local_flatness_sees_partials_not_envelopes():
    tone = piano_like()
    assert local_flatness(tone) < 0.45 < local_flatness(white_noise_like(tone))
    assert local_flatness(white_noise_like(tone)) == pytest.approx(local_flatness(white_noise_like(tone) * 0.1), rel=1e-6)


def test_audio_metrics_orders_ceiling_above_noise():
    reference = piano_like()
    ceiling, noisy = audio_metrics(reference, mulaw_round_trip(reference)), audio_metrics(reference, white_noise_like(reference))
    assert ceiling["mel_db"] < noisy["mel_db"] and ceiling["chroma"] > noisy["chroma"]
    assert ceiling["flatness"] < 0.05 < noisy["flatness"]
    assert noisy["rms_ratio"] == pytest.approx(1.0, abs=0.02)
