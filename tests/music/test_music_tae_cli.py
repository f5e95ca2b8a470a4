"""`etude music train` and `etude music generate` end to end at a tiny size."""

from __future__ import annotations

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
    assert "wrote" in capsys.readouterr().out


def test_generate_errors_are_one_line(trained, tmp_path, capsys):
    model = str(trained / "model.pt")
    assert main(["music", "generate", "--checkpoint", model, "-o", str(tmp_path / "z.mid")]) == 2  # needs a style
    assert "needs a performance" in capsys.readouterr().err
    assert main(["music", "generate", "--checkpoint", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "z.mid")]) == 2
