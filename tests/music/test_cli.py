"""`etude music ...`: encode/decode round trip, corpus statistics, similarity, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from etude.cli import main
from etude.music import Performance, PerformanceEncoding


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("etude: error: "), lines[0]
    return lines[0]


@pytest.fixture
def midi(tmp_path):
    path = tmp_path / "piece.mid"
    Performance([(60, 80, 0.0, 0.5), (64, 70, 0.25, 1.0), (67, 100, 2.5, 3.0)]).to_midi(path)
    return path


def test_encode_then_decode_round_trip(midi, tmp_path, capsys):
    assert main(["music", "encode", str(midi)]) == 0
    out, err = capsys.readouterr()
    ids = [int(w) for w in out.split()]
    assert err == "" and ids == PerformanceEncoding().encode(Performance.from_midi(midi)).tolist()
    (tmp_path / "ids.txt").write_text(out)
    assert main(["music", "decode", str(tmp_path / "ids.txt"), "-o", str(tmp_path / "back.mid")]) == 0
    assert "wrote 3 notes" in capsys.readouterr().out
    assert Performance.from_midi(tmp_path / "back.mid").notes == [
        (60, 77, 0.0, 0.5), (64, 69, 0.25, 1.0), (67, 97, 2.5, 3.0)]


def test_encode_to_npy_with_88_keys_and_decode_it(midi, tmp_path, capsys):
    assert main(["music", "encode", str(midi), "--keys", "88", "--bos", "--eos", "-o", str(tmp_path / "i.npy")]) == 0
    ids = np.load(tmp_path / "i.npy")
    assert ids[0] == 310 and ids[-1] == 1
    assert main(["music", "decode", str(tmp_path / "i.npy"), "--keys", "88", "-o", str(tmp_path / "b.mid")]) == 0
    assert len(Performance.from_midi(tmp_path / "b.mid")) == 3


def test_corpus_stats_and_export(corpus_cache, tmp_path, capsys):
    assert main(["music", "corpus", "--stats", "--limit", "4", "--cache", str(corpus_cache), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["pieces"] == 4 and stats["tokens"] > 1000 and stats["cache"].startswith(str(corpus_cache))
    assert main(["music", "corpus", "--limit", "2", "--cache", str(corpus_cache), "--export", str(tmp_path / "x")]) == 0
    assert len(list((tmp_path / "x").rglob("*.mid"))) == 2 and len(list((tmp_path / "x").rglob("*.json"))) == 2


def test_similarity_and_plot(midi, tmp_path, capsys):
    assert main(["music", "similarity", str(midi), str(midi), "--features"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "oa: 1.0000" and len(out) == 9
    assert main(["music", "plot", str(midi), "-o", str(tmp_path / "r.png"), "--melody"]) == 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "make_args, words",
    [
        (lambda d, m: ["music", "encode", str(d / "missing.mid")], ["missing.mid", "does not exist"]),
        (lambda d, m: ["music", "encode", str(d / "corrupt.mid")], ["corrupt.mid", "not a readable MIDI file"]),
        (lambda d, m: ["music", "similarity", str(m), str(d / "corrupt.mid")], ["not a readable MIDI file"]),
        (lambda d, m: ["music", "decode", str(d / "missing.txt"), "-o", str(d / "o.mid")], ["does not exist"]),
        (lambda d, m: ["music", "decode", str(d / "words.txt"), "-o", str(d / "o.mid")], ["item 1", "'sixty'"]),
        (lambda d, m: ["music", "decode", str(d / "big.txt"), "-o", str(d / "o.mid")], ["ids[0] = 999", "[0, 391)"]),
        (lambda d, m: ["music", "corpus", "--collection", "jazz", "--cache", str(d)], ["'jazz'", "bach"]),
        # failures to write: a folder as the output, an output under a file (its folder cannot exist)
        (lambda d, m: ["music", "decode", str(d / "ok.txt"), "-o", str(d / "folder")], ["-o", "folder' is a folder, not a file"]),
        (lambda d, m: ["music", "decode", str(d / "ok.txt"), "-o", str(d / "ok.txt" / "o.mid")],
         ["-o", "ok.txt/o.mid", "ok.txt' is a file, not a folder"]),
        (lambda d, m: ["music", "encode", str(m), "-o", str(d / "folder")], ["-o", "folder' is a folder, not a file"]),
        (lambda d, m: ["music", "encode", str(m), "-o", str(d / "ok.txt" / "ids.npy")], ["ids.npy", "is a file, not a folder"]),
        (lambda d, m: ["music", "encode", str(m), "-o", str(d / "ok.txt" / "ids.txt")], ["ids.txt", "is a file, not a folder"]),
        (lambda d, m: ["music", "plot", str(m), "-o", str(d / "folder")], ["-o", "folder' is a folder, not a file"]),
        # ids beyond int64, and a folder given as the ids file
        (lambda d, m: ["music", "decode", str(d / "huge.txt"), "-o", str(d / "o.mid")],
         ["item 1", "99999999999999999999", "beyond int64"]),
        (lambda d, m: ["music", "decode", str(d / "endless.txt"), "-o", str(d / "o.mid")], ["item 0", "beyond int64"]),
        (lambda d, m: ["music", "decode", str(d / "folder"), "-o", str(d / "o.mid")], ["folder is a directory"]),
        # SMPTE time division
        (lambda d, m: ["music", "encode", str(d / "smpte.mid")], ["smpte.mid uses SMPTE time division"]),
    ],
)
def test_user_errors_are_one_line_and_exit_2(make_args, words, midi, tmp_path, capsys):
    (tmp_path / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00")
    (tmp_path / "words.txt").write_text("60 sixty 61")
    (tmp_path / "big.txt").write_text("999")
    (tmp_path / "ok.txt").write_text("60 61")
    (tmp_path / "huge.txt").write_text("60 99999999999999999999 61")
    (tmp_path / "endless.txt").write_text("9" * 5000)  # longer than Python converts to int by default
    (tmp_path / "folder").mkdir()
    smpte = bytearray(midi.read_bytes())
    smpte[12:14] = bytes([0xE7, 40])
    (tmp_path / "smpte.mid").write_bytes(bytes(smpte))
    assert main(make_args(tmp_path, midi)) == 2
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert all(w in line for w in words), line
    assert out == "" and not (tmp_path / "o.mid").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []  # no temporary files left


def test_bad_keys_is_an_argparse_error(midi, capsys):
    with pytest.raises(SystemExit) as info:
        main(["music", "encode", str(midi), "--keys", "64"])
    assert info.value.code == 2
    assert "invalid choice: 64" in _one_error_line(capsys.readouterr().err)
