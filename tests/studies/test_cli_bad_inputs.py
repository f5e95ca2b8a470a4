"""Every bad input the hardening audit found is one `etude: error:` line and exit 2; --debug shows tracebacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from etude.cli import main
from etude.errors import BadInputError


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("etude: error: "), lines[0]
    return lines[0]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "afile").write_text("x")
    from etude.music import Performance

    Performance.from_arrays([60, 64], [90, 90], [0.0, 0.5], [0.5, 1.0]).to_midi(tmp_path / "t.mid")
    return tmp_path


@pytest.mark.parametrize(("out", "words"), [
    ("afile", ["is a file, not a folder", "--out"]),
    ("afile/sub", ["cannot create --out folder", "Not a directory"]),
    ("", ["--out must name a folder"]),
])
def test_reproduce_with_a_bad_out(files, capsys, out: str, words: list[str]) -> None:
    target = str(files / out) if out else ""
    assert main(["reproduce", "lola", "--preset", "smoke", "--out", target]) == 2
    line = _one_error_line(capsys.readouterr().err)
    for word in words:
        assert word in line


@pytest.mark.parametrize("argv", [
    ["audio", "render", "{d}/t.mid", "-o", "{d}/afile/x.wav"],
    ["audio", "render", "{d}/t.mid", "-o", "{d}"],
    ["music", "plot", "{d}/t.mid", "-o", "{d}/afile/x.png"],
    ["music", "plot", "{d}/t.mid", "-o", "/proc/etude-test.png"],
    ["music", "decode", "{d}/t.mid", "-o", "{d}/afile/x.mid"],
    ["music", "encode", "{d}/t.mid", "-o", "/proc/etude-test.npy"],
    ["music", "generate", "--checkpoint", "{d}/none.pt", "-o", "{d}/afile/x.mid"],
    ["audio", "generate", "--checkpoint", "{d}/none.pt", "--seconds", "inf", "-o", "{d}/x.wav"],
    ["audio", "generate", "--checkpoint", "{d}/none.pt", "--seconds", "nan", "-o", "{d}/x.wav"],
    ["audio", "train", "--out", "{d}/afile", "--steps", "1"],
    ["music", "corpus", "--limit", "1", "--export", "{d}/afile"],
    ["games", "tournament", "--seeds", "1e11"],
    ["games", "tournament", "--seeds", "100000000000"],
    ["games", "tournament", "--seeds", "2", "--steps", "100000000"],
    ["reproduce", "lola", "--preset", "smoke", "--set", "steps=1000000000", "--out", "{d}/r"],
    ["reproduce", "lola", "--preset", "smoke", "--set", "seeds=-5", "--out", "{d}/r"],
    ["reproduce", "lola", "--preset", "smoke", "--set", "lr=inf", "--out", "{d}/r"],
    ["report", ""],
])
def test_bad_outputs_and_sizes_are_one_line(files, capsys, argv: list[str]) -> None:
    argv = [a.replace("{d}", str(files)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses '1e11' for an int option
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "rerun with --debug" not in err
    assert len(err.splitlines()) == 1 and err.startswith("etude: error:")
    assert not (files / "r").exists() or not (files / "r" / "lola").exists()


def test_a_cache_entry_that_is_a_folder(tmp_path, capsys, monkeypatch) -> None:
    from etude.runtime.cache import check_entry, save_arrays

    (tmp_path / "entry.npz").mkdir()
    with pytest.raises(BadInputError, match="is a folder, not a file"):
        save_arrays(tmp_path / "entry.npz", "key", {"a": np.zeros(2)})
    (tmp_path / "cachefile").write_text("x")
    with pytest.raises(BadInputError, match="is a file"):
        check_entry(tmp_path / "cachefile" / "audio" / "render.npz")
    monkeypatch.setenv("ETUDE_CACHE", str(tmp_path / "cachefile"))
    assert main(["music", "corpus", "--limit", "1"]) == 2
    assert "cache folder" in _one_error_line(capsys.readouterr().err)


def test_seeds_beyond_torch_seeding_still_train() -> None:
    """LOLA derives seed * 100000 + i; with the README's largest seed the sampler seed used to overflow 2**64."""
    from etude.games import ipd
    from etude.games.training import train

    history = train(ipd(), "naive", "naive", steps=2, seeds=[(2**32 - 1) * 100_000 + i for i in range(2)])
    assert bool(torch.isfinite(history.rewards).all())


def _boom(args):
    raise ZeroDivisionError(f"division by zero while reading {args.out}")


@pytest.mark.parametrize("debug", ["", "flag", "env"])
def test_an_unexpected_exception_is_one_line_naming_the_argument(tmp_path, capsys, monkeypatch, debug: str) -> None:
    from etude import cli

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["reproduce"].set_defaults(func=_boom)
    if debug == "env":
        monkeypatch.setenv("ETUDE_DEBUG", "1")
    else:
        monkeypatch.delenv("ETUDE_DEBUG", raising=False)
    argv = ["reproduce", "lola", "--out", str(tmp_path / "weird")] + (["--debug"] if debug == "flag" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith(f"etude: error: --out '{tmp_path / 'weird'}': ZeroDivisionError: division by zero")
    if debug:
        assert "Traceback (most recent call last)" in err and "_boom" in err
    else:
        assert len(err.splitlines()) == 1 and "rerun with --debug" in last


def test_an_unexpected_os_error_names_the_argument_of_its_file(tmp_path, capsys, monkeypatch) -> None:
    import errno

    from etude import cli

    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device", f"{args.out}/lola/result.json")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["reproduce"].set_defaults(func=full_disk)
    monkeypatch.delenv("ETUDE_DEBUG", raising=False)
    assert main(["reproduce", "lola", "--out", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"etude: error: --out '{tmp_path / 'o'}': No space left on device")
