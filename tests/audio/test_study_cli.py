import json

import pytest

from etude.audio import fluidsynth_available, read_wav
from etude.cli import main
from etude.music import Performance

pytestmark = pytest.mark.skipif(
    not fluidsynth_available(),
    reason="needs fluidsynth and a GM soundfont: apt-get install fluidsynth timgm6mb-soundfont "
           "(the study has no synthetic fallback: the issue asks for rendered Bach)")



@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One temporary cache for this module: the two chorales are parsed and rendered once."""
    return tmp_path_factory.mktemp("audio_cache")


@pytest.fixture(autouse=True)
def _use_shared_cache(shared_cache, monkeypatch):
    monkeypatch.setenv("ETUDE_CACHE", str(shared_cache))


TINY_FULL = ["pieces=2", "max_seconds=4", "steps=2", "prior_steps=2", "batch=1", "length=64", "codes=8",
             "hops=[16, 8]", "residual=4", "layers=2", "stacks=1", "encoder_channels=4", "prior_residual=4",
             "prior_layers=2", "prior_length=4", "valid_crops=2", "generate_seconds=0.01", "checkpoint_every=1",
             "top_steps=2", "top_length=16", "top_residual=4", "top_layers=2", "reconstruct_seconds=0.02"]


def test_reproduce_smoke_then_resume_gives_the_same_result(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "amae", "--preset", "smoke", "--out", str(out)]) == 0
    result = json.loads((out / "amae" / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert [c["id"] for c in result["claims"]] == ["codebook_usage", "information_bound", "total_nll", "reconstruction",
                                                   "reconstruction_top", "samples"]
    assert all(c["verdict"] == "inconclusive" for c in result["claims"])  # smoke is too small to tell
    for name in ("heldout.wav", "reconstruction_level0.wav", "reconstruction_level1.wav", "sample.wav",
                 "sample_wavenet.wav", "spectrogram.png", "training_curves.png", "hierarchy.pt"):
        assert name in result["artifacts"] and (out / "amae" / name).is_file()
    audio, rate = read_wav(out / "amae" / "sample.wav")
    assert rate == 16000 and len(audio) == 800
    metrics = result["metrics"]  # the ceiling measured by the run, and the top level's code-free baseline
    assert set(metrics["prediction_error_db"]) == {"level0", "wavenet", "vq", "vq_ema_restart"}
    assert all(abs(db) < 1.0 for db in metrics["prediction_error_db"].values())  # 6 steps: about the signal's power
    assert metrics["calibration"]["sweep"] and "level1_baseline" in metrics and metrics["top_code_gain"]["n"] == 4
    assert "| level0 |" in metrics["ceiling"] and "not yet tonal" in metrics["ceiling"]
    notes = {c["id"]: c["note"] for c in result["claims"]}
    assert all("teacher-forced" in notes[c] for c in ("reconstruction", "reconstruction_top", "samples"))
    assert "without codes" in notes["reconstruction_top"]
    (out / "amae" / "result.json").unlink()  # resume from the final checkpoints: no training, same figures
    assert main(["reproduce", "amae", "--preset", "smoke", "--out", str(out), "--resume"]) == 0
    again = json.loads((out / "amae" / "result.json").read_text())
    assert again["metrics"] == result["metrics"]
    assert [c["measured"] for c in again["claims"]] == [c["measured"] for c in result["claims"]]

    gen = tmp_path / "gen.wav"
    assert main(["audio", "generate", "--checkpoint", str(out / "amae"), "--seconds", "0.02", "-o", str(gen)]) == 0
    assert len(read_wav(gen)[0]) == 320
    assert main(["audio", "generate", "--checkpoint", str(out / "amae"), "--seconds", "0", "-o", str(gen)]) == 2
    assert main(["audio", "generate", "--checkpoint", str(tmp_path / "none.pt"), "-o", str(gen)]) == 2
    assert "error" in capsys.readouterr().err


def test_full_preset_runs_at_a_tiny_size(tmp_path):
    args = ["reproduce", "amae", "--preset", "full", "--out", str(tmp_path), "--set", "dataset=chorales"]
    for item in TINY_FULL:  # the full sizes on the rendered chorales (recordings: tests/data/test_studies.py)
        args += ["--set", item]
    assert main(args) == 0
    result = json.loads((tmp_path / "amae" / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert isinstance(result["metrics"]["total_nll_bits"], float)
    assert result["settings"]["fabric"] == {"accelerator": "auto", "precision": "bf16-mixed"}  # trained through Fabric
    assert len(result["metrics"]["listening"]["reconstruction"]) == 2  # both levels of the stack, heard


def test_bad_override_is_refused(tmp_path, capsys):
    assert main(["reproduce", "amae", "--preset", "smoke", "--out", str(tmp_path), "--set", "steps=many"]) == 2
    assert "steps" in capsys.readouterr().err


def test_render_and_train_verbs(tmp_path):
    Performance([(60, 90, 0.0, 0.5), (67, 90, 0.5, 1.0)]).to_midi(tmp_path / "a.mid")
    assert main(["audio", "render", str(tmp_path / "a.mid"), "-o", str(tmp_path / "a.wav")]) == 0
    assert read_wav(tmp_path / "a.wav")[1] == 16000
    assert main(["audio", "render", str(tmp_path / "missing.mid"), "-o", str(tmp_path / "b.wav")]) == 2
    out = tmp_path / "model"
    assert main(["audio", "train", "--out", str(out), "--pieces", "2", "--max-seconds", "2", "--hops", "8", "2",
                 "--codes", "8", "--residual", "4", "--layers", "2", "--steps", "2", "--batch", "1", "--length", "64",
                 "--prior-length", "4"]) == 0
    assert (out / "hierarchy.pt").is_file()
    assert main(["audio", "generate", "--checkpoint", str(out / "hierarchy.pt"), "--seconds", "0.01",
                 "-o", str(tmp_path / "g.wav")]) == 0
    assert len(read_wav(tmp_path / "g.wav")[0]) == 160


def huge_wav(path):
    """A 2 GiB 16-bit mono WAV at 16 kHz (about 18.6 hours), sparse on disk: a header and a hole of zeros."""
    import struct

    size = 2**31 - 64
    header = (b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
              + b"data" + struct.pack("<I", size))
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + size)
    return path


def test_read_wav_reads_only_what_it_needs(tmp_path, monkeypatch):
    import wave

    import pytest

    from etude.audio import read_wav
    from etude.errors import BadInputError

    path = huge_wav(tmp_path / "huge.wav")
    asked = []
    original = wave.Wave_read.readframes
    monkeypatch.setattr(wave.Wave_read, "readframes", lambda self, n: asked.append(n) or original(self, n))
    audio, rate = read_wav(path, max_seconds=0.05)
    assert rate == 16000 and len(audio) == 800 and asked == [800]
    with pytest.raises(BadInputError, match="at most 600 s"):
        read_wav(path, limit_seconds=600)
    assert asked == [800]  # refused before reading a sample


def test_train_flags_reconstruct_verb_and_bad_inputs_exit_2(tmp_path, capsys):
    import numpy as np
    import torch

    from etude.audio import load_hierarchy, write_wav
    from etude.runtime import load_checkpoint, save_checkpoint

    out = tmp_path / "model"
    assert main(["audio", "train", "--out", str(out), "--pieces", "2", "--max-seconds", "2", "--hops", "4", "2",
                 "--codes", "8", "--bottleneck", "vq", "--ema", "0.99", "--kmeans-init", "--restart-threshold", "2",
                 "--residual", "4", "--layers", "2", "--steps", "2", "--batch", "1", "--length", "64",
                 "--prior-length", "4"]) == 0
    model = load_hierarchy(out / "hierarchy.pt")
    vq = model.levels[0].quantizer
    assert vq.ema == 0.99 and vq.kmeans_init and vq.restart_threshold == 2.0 and bool(vq.initialized)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)).astype(np.float32)
    write_wav(tmp_path / "in.wav", tone, 16000)
    assert main(["audio", "reconstruct", "--checkpoint", str(out), str(tmp_path / "in.wav"), "--level", "1",
                 "-o", str(tmp_path / "rec.wav")]) == 0
    assert "log-mel distance" in capsys.readouterr().out and len(read_wav(tmp_path / "rec.wav")[0]) == 1600
    huge = huge_wav(tmp_path / "huge.wav")  # 2 GiB: --seconds 0.05 reads 800 samples, no --seconds is refused
    assert main(["audio", "reconstruct", "--checkpoint", str(out), str(huge), "--seconds", "0.05",
                 "-o", str(tmp_path / "rec2.wav")]) == 0
    assert len(read_wav(tmp_path / "rec2.wav")[0]) == 800
    write_wav(tmp_path / "8k.wav", tone, 8000)
    (tmp_path / "junk.wav").write_bytes(b"not a wav at all")
    (tmp_path / "junk.mid").write_bytes(b"not a midi file")
    state = load_checkpoint(out / "hierarchy.pt")
    state["config"]["levels"] = state["config"]["levels"][:1]  # another level layout than the weights
    save_checkpoint(tmp_path / "other.pt", state)
    bad = [["audio", "reconstruct", "--checkpoint", str(out), str(tmp_path / "8k.wav"), "-o", str(tmp_path / "x.wav")],
           ["audio", "reconstruct", "--checkpoint", str(out), str(huge), "-o", str(tmp_path / "x.wav")],
           ["audio", "reconstruct", "--checkpoint", str(out), str(huge), "--seconds", "1e9", "-o", str(tmp_path / "x.wav")],
           ["audio", "reconstruct", "--checkpoint", str(out), str(tmp_path / "junk.wav"), "-o", str(tmp_path / "x.wav")],
           ["audio", "reconstruct", "--checkpoint", str(out), str(tmp_path / "in.wav"), "--level", "2", "-o", str(tmp_path / "x.wav")],
           ["audio", "render", str(tmp_path / "junk.mid"), "-o", str(tmp_path / "x.wav")],
           ["audio", "generate", "--checkpoint", str(tmp_path / "other.pt"), "-o", str(tmp_path / "x.wav")],
           ["audio", "train", "--out", str(out), "--ema", "1.5"]]
    for args in bad:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert "error" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    capsys.readouterr()
