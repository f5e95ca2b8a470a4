import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from etude.audio import fluidsynth_available, midi_preview, read_wav, render_midi, render_performance, write_wav
from etude.audio import render as render_module
from etude.errors import BadInputError, MissingDependencyError
from etude.music import Performance

NEEDS_FLUIDSYNTH = pytest.mark.skipif(
    not fluidsynth_available(), reason="needs fluidsynth and a GM soundfont: apt-get install fluidsynth timgm6mb-soundfont")

CHORD = Performance([(60, 90, 0.0, 0.5), (64, 90, 0.0, 0.5), (67, 90, 0.5, 1.0)])


def test_wav_round_trip(tmp_path):
    audio = np.sin(np.linspace(0, 100, 1600)).astype(np.float32) * 0.5
    back, rate = read_wav(write_wav(tmp_path / "a.wav", audio, 8000))
    assert rate == 8000 and np.abs(back - audio).max() < 1e-4
    with pytest.raises(BadInputError, match="finite 1-D"):
        write_wav(tmp_path / "b.wav", np.zeros((2, 3)))
    (tmp_path / "c.wav").write_bytes(b"not a wav")
    with pytest.raises(BadInputError, match="cannot read WAV"):
        read_wav(tmp_path / "c.wav")


def test_missing_fluidsynth_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(render_module, "find_soundfont", lambda: tmp_path / "x.sf2")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="apt-get install fluidsynth"):
        render_performance(CHORD, use_cache=False)
    assert midi_preview(tmp_path / "none.mid") is None


def test_missing_soundfont_names_the_package(monkeypatch):
    monkeypatch.setattr(render_module, "SOUNDFONTS", ())
    monkeypatch.delenv("ETUDE_SOUNDFONT", raising=False)
    with pytest.raises(MissingDependencyError, match="timgm6mb-soundfont"):
        render_module.find_soundfont()


@NEEDS_FLUIDSYNTH
def test_render_is_cached_by_content(tmp_path, monkeypatch):
    audio = render_performance(CHORD)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.9 * 16000 < len(audio) < 4 * 16000  # one second of notes plus the release
    assert np.sqrt(np.mean(audio ** 2)) > 1e-3 and np.abs(audio).max() <= 1
    files = list((tmp_path / "cache" / "audio").glob("render-*.npz"))
    assert len(files) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("fluidsynth ran although the render is cached")

    monkeypatch.setattr(subprocess, "run", refuse)  # fluidsynth runs through subprocess.run
    assert np.array_equal(render_performance(CHORD), audio)
    other = CHORD.transpose(2)
    with pytest.raises(AssertionError, match="cached"):
        render_performance(other)  # different content, different key
    monkeypatch.undo()
    files[0].write_bytes(b"corrupt")
    assert np.array_equal(render_performance(CHORD), audio)  # rebuilt, not trusted


@NEEDS_FLUIDSYNTH
def test_midi_preview_is_a_wav(tmp_path):
    CHORD.to_midi(tmp_path / "a.mid")
    mime, data = midi_preview(tmp_path / "a.mid")
    assert mime == "audio/wav" and data[:4] == b"RIFF"
    (tmp_path / "b.wav").write_bytes(data)
    audio, rate = read_wav(tmp_path / "b.wav")
    assert rate == 16000 and np.allclose(audio, render_midi(tmp_path / "a.mid"), atol=1e-4)



def test_soundfont_order_and_choice(monkeypatch, tmp_path):
    """$ETUDE_SOUNDFONT first, then the sampled grand piano (FluidR3_GM) before TimGM6mb."""
    grand, small = tmp_path / "FluidR3_GM.sf2", tmp_path / "TimGM6mb.sf2"
    small.write_bytes(b"small")
    monkeypatch.delenv("ETUDE_SOUNDFONT", raising=False)
    assert [Path(p).name for p in render_module.SOUNDFONTS[:2]] == ["FluidR3_GM.sf2", "TimGM6mb.sf2"]
    monkeypatch.setattr(render_module, "SOUNDFONTS", (str(grand), str(small)))
    assert render_module.find_soundfont() == small  # the grand piano is not installed
    grand.write_bytes(b"grand")
    assert render_module.find_soundfont() == grand
    monkeypatch.setenv("ETUDE_SOUNDFONT", str(small))
    assert render_module.find_soundfont() == small


@NEEDS_FLUIDSYNTH
def test_render_cache_keys_on_the_soundfont(tmp_path, monkeypatch):
    fonts = [Path(p) for p in render_module.SOUNDFONTS if Path(p).is_file()]
    if len(fonts) < 2:
        pytest.skip("needs two installed soundfonts (fluid-soundfont-gm and timgm6mb-soundfont)")
    renders = []
    for font in fonts[:2]:
        monkeypatch.setenv("ETUDE_SOUNDFONT", str(font))
        renders.append(render_performance(CHORD))
    assert len(list((tmp_path / "cache" / "audio").glob("render-*.npz"))) == 2
    assert len(renders[0]) != len(renders[1]) or not np.allclose(renders[0], renders[1])
    # the same name with other bytes is another soundfont
    copy = tmp_path / fonts[1].name
    copy.write_bytes(fonts[0].read_bytes())
    monkeypatch.setenv("ETUDE_SOUNDFONT", str(copy))
    assert np.array_equal(render_performance(CHORD), renders[0])
