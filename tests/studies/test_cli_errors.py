"""The `etude` command line: `list`, and every user error as one stderr line and status 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from etude.cli import main
from etude.games.study import LolaStudy

LOLA_CLAIMS = ["nl_defect", "lola_cooperate", "mp_nash", "pg_like_exact", "lola_om", "coin_own", "coin_reward"]


def _one_error_line(err: str) -> str:
    """The single line of `err`, which must start with 'etude: error:'."""
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("etude: error: "), lines[0]
    return lines[0]


def test_list_prints_lola_and_its_claims(capsys) -> None:
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    start = lines.index(f"lola (etude.games): {LolaStudy.title}")  # the package beside each study
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    lines = lines[start:end]
    assert "arXiv:1709.04326" in lines[1]
    assert lines[2] == "  presets: smoke, quick, long, full"
    listed = [line.split(":")[0].removeprefix("  - ") for line in lines if line.startswith("  - ")]
    assert listed == LOLA_CLAIMS
    assert [c.id for c in LolaStudy().claims()] == LOLA_CLAIMS


def test_reproduce_unknown_study(capsys, tmp_path) -> None:
    out_dir = tmp_path / "run"
    assert main(["reproduce", "nosuchstudy", "--out", str(out_dir)]) == 2
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert "'nosuchstudy'" in line and "lola" in line
    assert out == ""
    assert not out_dir.exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "nosuchfield=1"], ["'nosuchfield'"]),
        (["--set", "steps=many"], ["'steps'", "'many'"]),
        (["--set", "steps"], ["--set", "KEY=VALUE", "'steps'"]),
        (["--set", "=3"], ["--set", "'=3'"]),
        (["--preset", "huge"], ["'huge'", "smoke"]),
        (["--seed", "-1"], ["seed", "-1"]),
        (["--seeds", "1,x"], ["--seeds", "'1,x'"]),
        (["--seeds", "4-2"], ["--seeds", "'4-2'", "low <= high"]),
        (["--seeds", "0-100000000000"], ["--seeds", "1000"]),
        (["--seeds", "1,1"], ["distinct"]),
        (["--seeds", "0,1", "--seed", "3"], ["--seed", "--seeds"]),
        (["--jobs", "0"], ["jobs", "0"]),
        (["--jobs", "two"], ["--jobs", "'two'", "auto"]),
    ],
)
def test_reproduce_lola_bad_settings(capsys, tmp_path, args: list[str], words: list[str]) -> None:
    out_dir = tmp_path / "run"
    assert main(["reproduce", "lola", "--out", str(out_dir), *args]) == 2
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    for word in words:
        assert word in line
    assert out == ""
    assert not out_dir.exists()  # refused before anything ran or was written


def test_set_with_two_studies_is_refused(capsys, tmp_path) -> None:
    assert main(["reproduce", "lola", "lola", "--preset", "smoke", "--set", "steps=3", "--out", str(tmp_path / "r")]) == 2
    assert "one study" in _one_error_line(capsys.readouterr().err)


def test_report_of_a_missing_folder(capsys, tmp_path) -> None:
    missing = tmp_path / "nonexistent"
    assert main(["report", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert str(missing) in _one_error_line(err)
    assert out == ""


@pytest.fixture
def keep_threads():
    """Restore torch's thread count: a propagated error leaves the study's (see tests/studies/test_runner.py)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_corrupt_checkpoint_on_resume(capsys, tmp_path, monkeypatch, keep_threads) -> None:
    monkeypatch.setenv("ETUDE_PROGRESS", "0")
    checkpoint = tmp_path / "lola" / "checkpoints" / "ipd_nl.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"this is not a torch checkpoint \x00\xff" * 8)
    from etude.studies import get_study
    from etude.studies.record import write_record
    from etude.studies.registry import STUDIES
    from etude.studies.task import Task, run_record

    study = get_study("lola")  # the run being resumed recorded these settings (else the resume is refused first)
    task = Task("lola", STUDIES["lola"], "smoke", 0, str(tmp_path / "lola"), True, study.preset("smoke"))
    write_record(task.study_dir, run_record(task, study))
    status = main(["reproduce", "lola", "--preset", "smoke", "--out", str(tmp_path), "--resume"])
    assert status == 2
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert str(checkpoint) in line
    assert "corrupt" in line
    assert not (tmp_path / "lola" / "result.json").exists()  # not recorded as a crashed study
    assert checkpoint.read_bytes().startswith(b"this is not")  # left for the user to inspect


def test_parse_error_exits_2_from_argparse(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["nosuchcommand"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def _console_script() -> str:
    beside = Path(sys.executable).with_name("etude")
    if beside.is_file():
        return str(beside)
    found = shutil.which("etude")
    assert found is not None, "the `etude` console script is not installed (pip install -e .)"
    return found


def test_console_script_reports_one_line_and_exit_2(tmp_path) -> None:
    env = {**os.environ, "ETUDE_PROGRESS": "0"}
    proc = subprocess.run([_console_script(), "reproduce", "nosuchstudy", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    line = _one_error_line(proc.stderr)
    assert "'nosuchstudy'" in line
    assert not (tmp_path / "run").exists()
