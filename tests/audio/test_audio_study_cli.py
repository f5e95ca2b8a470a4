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
             "prior_layers=2", "prior_length=4", "valid_crops=2", "generate_seconds=0.01", "checkpoint_every=1"]


def test_reproduce_smoke_then_resume_gives_the_same_result(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "amae", "--preset", "smoke", "--out", str(out)]) == 0
    result = json.loads((out / "amae" / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert [c["id"] for c in result["claims"]] == ["codebook_usage", "information_bound", "total_nll", "samples"]
    assert all(c["verdict"] == "inconclusive" for c in result["claims"])  # smoke is too small to tell
    for name in ("sample.wav", "spectrogram.png", "training_curves.png", "hierarchy.pt"):
        assert name in result["artifacts"] and (out / "amae" / name).is_file()
    audio, rate = read_wav(out / "amae" / "sample.wav")
    assert rate == 16000 and len(audio) == 800
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
    args = ["reproduce", "amae", "--preset", "full", "--out", str(tmp_path)]
    for item in TINY_FULL:
        args += ["--set", item]
    assert main(args) == 0
    result = json.loads((tmp_path / "amae" / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert set(result["metrics"]["total_nll_bits"]) == {"16", "8"}


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
