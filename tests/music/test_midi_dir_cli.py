"""`etude music train --midi-dir`: skipped files in one line, held-out NLL, determinism, bad folders exit 2."""

from __future__ import annotations

import pytest
import torch

from etude.cli import main

TINY = ["--steps", "3", "--max-tokens", "24", "--dim", "16", "--heads", "2", "--layers", "1", "--batch-size", "2",
        "--per-piece", "2", "--conditioning", "melody+performance", "--held-out", "0.3"]


@pytest.fixture
def folder(tmp_path, write_midi_folder):
    root = tmp_path / "midi"
    write_midi_folder(root, count=8, notes=12)
    (root / "broken.mid").write_bytes(b"MThd\x00\x00")
    return root


def _weights(path):
    from etude.music.training import load_model

    return load_model(path).state_dict()


def test_train_on_a_folder_warns_once_and_prints_the_held_out_nll(folder, tmp_path, capsys):
    args = ["music", "train", "--out", str(tmp_path / "a"), "--midi-dir", str(folder), "--seed", "3", *TINY]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [("etude: warning: skipped 1 of 9 files that could not be read (first: broken.mid: "
                                 "is not a readable MIDI file (no MThd header))")]
    assert "tokenized: 8 files" in out and "held-out NLL" in out and "train, " in out
    assert main(["music", "train", "--out", str(tmp_path / "b"), "--midi-dir", str(folder), "--seed", "3", *TINY]) == 0
    out = capsys.readouterr().out
    assert "read from the cache: 8 files" in out  # the same held-out NLL, from the same weights:
    a, b = _weights(tmp_path / "a" / "model.pt"), _weights(tmp_path / "b" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert main(["music", "train", "--out", str(tmp_path / "c"), "--midi-dir", str(folder), "--seed", "4", *TINY]) == 0
    c = _weights(tmp_path / "c" / "model.pt")
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("case", ["missing", "empty", "unreadable", "file", "held-out"])
def test_bad_folders_exit_2_with_one_line(case, tmp_path, capsys):
    folder = tmp_path / "in"
    extra = []
    if case in ("empty", "unreadable"):
        folder.mkdir()
    if case == "unreadable":
        (folder / "a.mid").write_bytes(b"")
        (folder / "b.midi").write_text("text")
    if case == "file":
        folder.write_text("x")
    if case == "held-out":
        extra = ["--held-out", "1.5"]
    assert main(["music", "train", "--out", str(tmp_path / "out"), "--midi-dir", str(folder), *extra]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("etude: error: "), lines
    expected = {"missing": "does not exist", "empty": "holds no .mid or .midi file", "file": "is not a folder",
                "unreadable": "none could be read (first: a.mid: ", "held-out": "--held-out"}[case]
    assert expected in lines[0]
