"""Piano WAV folders: 44.1 kHz recordings resampled to 16 kHz, checked against a sine's frequency and level
measured independently (zero crossings, RMS), and broken files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.data.data_files import write_wav

from etude.data import load_piano, read_wav
from etude.errors import BadInputError, MissingDataError


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * math.pi * freq * t)


def zero_crossing_frequency(x: np.ndarray, rate: int) -> float:
    """Frequency from the first and last upward zero crossings (linear interpolation between samples)."""
    up = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    times = (up + (-x[up] / (x[up + 1] - x[up]))) / rate
    return (len(times) - 1) / (times[-1] - times[0])


def test_a_44_1_khz_sine_resampled_to_16_khz(tmp_path) -> None:
    write_wav(tmp_path / "piano" / "a440.wav", sine(440.0, 44_100, 1.0), 44_100)
    audio = read_wav(tmp_path / "piano" / "a440.wav", 16_000)
    assert audio.dtype == np.float32 and len(audio) == 16_000  # 44,100 * 160 / 441
    core = audio[200:-200]  # away from the filter's edges
    assert abs(zero_crossing_frequency(core, 16_000) - 440.0) < 0.5
    assert abs(float(np.sqrt(np.mean(core.astype(np.float64) ** 2))) - 0.5 / math.sqrt(2)) < 0.005
    # Read at its own rate, the same file holds 44,100 samples: resampling is not a relabelling of the rate.
    assert len(read_wav(tmp_path / "piano" / "a440.wav", None)) == 44_100
    assert abs(zero_crossing_frequency(read_wav(tmp_path / "piano" / "a440.wav", None), 44_100) - 440.0) < 0.5


def test_stereo_is_averaged_and_8_bit_is_centred(tmp_path) -> None:
    left, right = sine(300.0, 22_050, 0.2), sine(300.0, 22_050, 0.2, amplitude=0.1)
    write_wav(tmp_path / "st.wav", np.stack([left, right], axis=1), 22_050)
    mono = read_wav(tmp_path / "st.wav", None)
    assert np.allclose(mono, (left + right) / 2, atol=2 / 32768)
    write_wav(tmp_path / "u8.wav", sine(300.0, 8_000, 0.1), 8_000, width=1)
    assert np.allclose(read_wav(tmp_path / "u8.wav", None), sine(300.0, 8_000, 0.1), atol=1.5 / 128)


def test_a_folder_loads_in_name_order_at_the_model_rate(tmp_path) -> None:
    write_wav(tmp_path / "piano" / "b.wav", sine(220.0, 48_000, 0.3), 48_000)
    write_wav(tmp_path / "piano" / "sub" / "a.wav", sine(220.0, 16_000, 0.5), 16_000)
    tracks = load_piano(tmp_path)
    assert [len(t) for t in tracks] == [4_800, 8_000]  # b.wav < sub/a.wav; 0.3 s at 16 kHz, 0.5 s


def test_an_unreadable_wav_is_named(tmp_path) -> None:
    (tmp_path / "piano").mkdir()
    (tmp_path / "piano" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    with pytest.raises(BadInputError, match=r"piano/broken\.wav: unreadable WAV"):
        load_piano(tmp_path)


def test_a_folder_without_wavs(tmp_path) -> None:
    (tmp_path / "piano").mkdir()
    (tmp_path / "piano" / "notes.txt").write_text("no audio")
    with pytest.raises(MissingDataError, match=r"piano recordings not found: \S+/piano: no \.wav files"):
        load_piano(tmp_path)


def test_the_piano_sub_folder_comes_before_data_dir_itself(tmp_path) -> None:
    write_wav(tmp_path / "piano" / "a.wav", sine(220.0, 16_000, 0.25), 16_000)
    write_wav(tmp_path / "other" / "speech.wav", sine(220.0, 16_000, 0.5), 16_000)
    assert [len(t) for t in load_piano(tmp_path)] == [4_000]
    assert [len(t) for t in load_piano(tmp_path / "other")] == [8_000]  # DIR may be the recordings' folder
