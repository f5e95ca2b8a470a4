"""`etude music train` and `etude music generate` end to end at a tiny size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from etude.cli import main
from etude.music import Performance


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus_cache):
    out = tmp_path_factory.mktemp("tae_model")
    args = ["music", "train", "--out", str(out), "--pieces", "4", "--steps", "3", "--max-tokens", "24", "--dim", "16",
            "--heads", "2", "--layers", "1", "--seconds", "1.0", "--per-piece", "2", "--batch-size", "2",
            "--conditioning", "melody+performance", "--combine", "concat", "--cache", str(corpus_cache)]
    assert main(args) == 0
    return out


def test_train_writes_a_model_and_a_resumable_checkpoint(trained):
    assert (trained / "model.pt").is_file() and (trained / "training.pt").is_file()


def test_generate_with_style_melody_and_interpolation(trained, bach, tmp_path, capsys):
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    bach.pieces[0].performance.to_midi(a)
    bach.pieces[1].melody.to_midi(b)
    model = str(trained / "model.pt")
    assert main(["music", "generate", "--checkpoint", model, "--style", str(a), "--melody", str(b),
                 "-o", str(tmp_path / "x.mid"), "--batch", "2", "--top-p", "0.9"]) == 0
    assert (tmp_path / "x_0.mid").is_file() and (tmp_path / "x_1.mid").is_file()
    assert main(["music", "generate", "--checkpoint", model, "--interpolate", str(a), str(b), "--alpha", "0.3",
                 "--melody", str(b), "-o", str(tmp_path / "y.mid"), "--length", "12", "--seed", "1"]) == 0
    assert isinstance(Performance.from_midi(tmp_path / "y.mid"), Performance)
    out = capsys.readouterr().out
    assert "wrote" in out and "texture: polyphony" in out  # no held-out chorale among 4: no data figures beside


def test_generate_errors_are_one_line(trained, tmp_path, capsys):
    model = str(trained / "model.pt")
    assert main(["music", "generate", "--checkpoint", model, "-o", str(tmp_path / "z.mid")]) == 2  # needs a style
    assert "needs --style" in capsys.readouterr().err
    assert main(["music", "generate", "--checkpoint", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "z.mid")]) == 2


def _saved(tmp_path, conditioning, pool=True, **extra):
    from etude.music import TransformerAutoencoder, TransformerConfig, save_model

    torch.manual_seed(0)
    cfg = TransformerConfig(dim=16, heads=2, layers=1, ff=32, max_len=24, dropout=0.0)
    path = tmp_path / f"{conditioning}_{pool}.pt"
    save_model(path, TransformerAutoencoder(cfg, conditioning, pool=pool, encoder_layers=1), **extra)
    return str(path)


@pytest.mark.parametrize("conditioning,options,message", [
    ("performance", ["--style", "A", "--melody", "B"], "--melody: this model (--conditioning performance) has no melody"),
    ("none", ["--style", "A"], "--style: this model (--conditioning none) has no performance encoder"),
    ("melody", ["--interpolate", "A", "B", "--melody", "B"], "--interpolate: this model (--conditioning melody)"),
    ("performance", ["--style", "A", "--interpolate", "A", "B"], "--style and --interpolate both set the style"),
    ("performance", ["--style", "A", "--alpha", "0.3"], "--alpha weighs the two styles of --interpolate"),
    ("melody", [], "needs --melody"),
])
def test_options_that_do_not_apply_are_one_line_errors(tmp_path, capsys, conditioning, options, message):
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    for path in (a, b):
        Performance.from_arrays([60, 64], [80, 80], [0.0, 0.5], [0.5, 1.0]).to_midi(path)
    options = [str(a) if o == "A" else str(b) if o == "B" else o for o in options]
    out = tmp_path / "z.mid"
    code = main(["music", "generate", "--checkpoint", _saved(tmp_path, conditioning), "-o", str(out), *options])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_long_style_file_is_pooled_over_all_of_it(tmp_path, capsys):
    from etude.music import PerformanceEncoding, load_model

    n = 40  # 40 notes: about 120 tokens, 5 windows of the model's 24
    long = Performance.from_arrays(60 + np.arange(n) % 12, np.full(n, 90), np.arange(n) * 0.25, np.arange(n) * 0.25 + 0.2)
    long.to_midi(tmp_path / "long.mid")
    from etude.music.likeness import music_figures

    model_path = _saved(tmp_path, "performance", data_figures=music_figures([long]))
    assert main(["music", "generate", "--checkpoint", model_path, "--style", str(tmp_path / "long.mid"),
                 "-o", str(tmp_path / "x.mid")]) == 0
    tokens = len(PerformanceEncoding().encode(long))
    out = capsys.readouterr().out
    assert f"pooled over all {tokens} tokens" in out
    assert "polyphony" in out and "(data 1)" in out and "unlike the data in" in out  # an untrained model
    model = load_model(model_path)
    ids = torch.from_numpy(PerformanceEncoding().encode(long))[None]
    with torch.no_grad():  # the mean of the encoder outputs over every step, window by window
        steps = torch.cat([model.performance_encoder(w[None])[0] for w in ids[0].split(24)])
        torch.testing.assert_close(model.style_of_long(ids), steps.mean(0, keepdim=True))
        torch.testing.assert_close(model.style_of_long(ids[:, :20]), model.style(ids[:, :20]))


def test_a_failed_training_run_leaves_no_out_folder(tmp_path, corpus_cache, capsys):
    out = tmp_path / "new" / "run"
    (tmp_path / "empty").mkdir()
    args = ["music", "train", "--out", str(out), "--midi-dir", str(tmp_path / "empty"), "--steps", "2",
            "--cache", str(corpus_cache)]
    assert main(args) == 2  # a folder without MIDI files
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()


def test_resume_with_other_settings_refuses_naming_the_option(trained, corpus_cache, capsys):
    before = (trained / "model.pt").read_bytes()
    args = ["music", "train", "--out", str(trained), "--pieces", "4", "--steps", "3", "--max-tokens", "24", "--dim",
            "16", "--heads", "2", "--layers", "1", "--seconds", "1.0", "--per-piece", "2", "--batch-size", "2",
            "--conditioning", "melody+performance", "--combine", "concat", "--cache", str(corpus_cache), "--resume"]
    assert main([*args, "--lr", "0.9"]) == 2
    err = capsys.readouterr().err
    assert "--lr is 0.9 here but 0.002" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--seed", "1"]) == 2 and "--seed is 1 here but 0" in capsys.readouterr().err
    assert (trained / "model.pt").read_bytes() == before
    assert main(args) == 0  # the same settings resume


def test_a_damaged_model_gets_advice_for_generate(trained, tmp_path, capsys):
    data = bytearray((trained / "model.pt").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "bad.pt").write_bytes(bytes(data))
    assert main(["music", "generate", "--checkpoint", str(tmp_path / "bad.pt"), "-o", str(tmp_path / "z.mid")]) == 2
    err = capsys.readouterr().err
    assert "--resume" not in err and "delete" not in err and "etude music train" in err
