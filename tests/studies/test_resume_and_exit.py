"""A resume continues the same run or refuses; one run per --out at a time; exit codes mean something."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etude.cli import build_parser, main
from etude.errors import BadInputError, CheckpointError
from etude.studies import get_study, run_studies, study_names
from etude.studies.record import LOCK_NAME, RECORD_NAME, check_record, run_lock
from etude.studies.registry import STUDIES
from etude.studies.report import write_report
from etude.studies.task import Task, run_record


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- exit codes -----------------------------------------------------------------------------------


def test_exit_0_when_every_study_finished(fake, tmp_path, capsys) -> None:
    assert main(["reproduce", "fake_good", "--preset", "smoke", "--out", str(tmp_path)]) == 0


def test_exit_1_when_a_study_crashed_and_the_others_still_ran(fake, tmp_path, capsys) -> None:
    status = main(["reproduce", "fake_crash", "fake_good", "--preset", "smoke", "--out", str(tmp_path)])
    assert status == 1
    out, err = capsys.readouterr()
    assert "fake_crash [" in out and "CRASHED" in out and "fake_good [" in out
    assert _error_line(err) == "etude: 1 of 2 crashed: fake_crash"
    assert json.loads((tmp_path / "fake_good" / "result.json").read_text())["status"] == "ok"
    report = write_report(tmp_path).read_text()  # the report still renders, crash included
    assert "fake_crash" in report and "crashed" in report.lower()


def test_exit_2_for_bad_input_before_anything_runs(fake, tmp_path, capsys) -> None:
    assert main(["reproduce", "fake_good", "--preset", "smoke", "--set", "steps=-1", "--out", str(tmp_path)]) == 2
    assert "steps" in _error_line(capsys.readouterr().err)
    assert fake.CALLS == [] and not (tmp_path / "fake_good").exists()


def test_exit_130_on_ctrl_c(fake, tmp_path, capsys, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fake.GoodStudy, "run", interrupted)
    assert main(["reproduce", "fake_good", "--preset", "smoke", "--out", str(tmp_path)]) == 130
    assert _error_line(capsys.readouterr().err) == "etude: interrupted"


def test_help_documents_the_exit_codes() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["reproduce"].format_help()
    for line in ("0    every study finished", "1    at least one study crashed", "2    bad input, refused in one line", "130  interrupted"):
        assert line in text, text


# --- the run record -------------------------------------------------------------------------------


def test_resume_with_another_set_value_is_refused_naming_the_field(fake, tmp_path) -> None:
    run_studies(["fake_good"], preset="smoke", seed=0, out=tmp_path, overrides={"lr": "0.25"})
    record = json.loads((tmp_path / "fake_good" / RECORD_NAME).read_text())
    assert record["settings"]["lr"] == 0.25 and record["seed"] == 0 and record["preset"] == "smoke"
    assert record["fabric"] == {"accelerator": "cpu", "precision": "32-true"}
    (tmp_path / "fake_good" / "result.json").unlink()  # the hostile pass: an unfinished run
    with pytest.raises(CheckpointError, match=r"settings.lr differs \(recorded 0.25, now 0.5\)"):
        run_studies(["fake_good"], preset="smoke", seed=0, out=tmp_path, resume=True)
    assert len(fake.CALLS) == 1
    run_studies(["fake_good"], preset="smoke", seed=0, out=tmp_path, resume=True, overrides={"lr": "0.25"})
    assert len(fake.CALLS) == 2 and fake.CALLS[-1][3] is True  # the same settings continue


def test_a_folder_with_files_but_no_record_is_not_resumed(tmp_path) -> None:
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="no run-record.json"):
        check_record(tmp_path, {"seed": 0})
    check_record(tmp_path / "absent", {"seed": 0})  # nothing there yet: a resume starts it


def test_an_unreadable_record_is_refused(tmp_path) -> None:
    (tmp_path / RECORD_NAME).write_text("{")
    with pytest.raises(CheckpointError, match="unreadable"):
        check_record(tmp_path, {"seed": 0})


def _refusals(name: str, tmp_path: Path) -> list[str]:
    """Record a smoke run of study ``name`` at seed 0 (without training), then resume it with another
    seed and with another value of one preset field; return the two refusals."""
    import dataclasses

    study = get_study(name)
    settings = study.preset("smoke")
    task = Task(name, STUDIES[name], "smoke", 0, str(tmp_path / name), True, settings)
    from etude.studies.record import write_record

    write_record(task.study_dir, run_record(task, study))
    (tmp_path / name / "model.pt").write_bytes(b"a checkpoint of seed 0")
    messages = []
    with pytest.raises(CheckpointError) as refused:
        run_studies([name], preset="smoke", seed=1, out=tmp_path, resume=True)
    messages.append(str(refused.value))
    field = next(f.name for f in dataclasses.fields(settings) if type(getattr(settings, f.name)) in (int, float))
    value = getattr(settings, field)
    other = str(value + 1) if isinstance(value, int) else repr(value / 2)
    with pytest.raises(CheckpointError) as refused:
        run_studies([name], preset="smoke", seed=0, out=tmp_path, resume=True, overrides={field: other})
    messages.append(str(refused.value))
    assert f"settings.{field} differs" in messages[1], messages[1]
    return messages


@pytest.mark.parametrize("name", study_names())
def test_every_study_refuses_a_resume_with_another_seed_or_set_value(name, tmp_path) -> None:
    seed, setting = _refusals(name, tmp_path)
    assert "seed differs (recorded 0, now 1)" in seed and "\n" not in seed
    assert "\n" not in setting
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["model.pt", RECORD_NAME]  # nothing ran


# --- one run per --out ----------------------------------------------------------------------------


def test_a_second_run_into_the_same_out_refuses(tmp_path) -> None:
    with run_lock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text() == str(os.getpid())
        with pytest.raises(BadInputError, match=r"is in use by another etude run \(pid \d+\)"):
            with run_lock(tmp_path):
                pass
    with run_lock(tmp_path):  # released at the end of the block
        pass


def test_a_concurrent_process_is_refused_in_one_line(fake, tmp_path) -> None:
    code = (
        "import sys, time\n"
        "from etude.studies.record import run_lock\n"
        f"with run_lock({str(tmp_path)!r}):\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(BadInputError, match=f"pid {holder.pid}"):
            run_studies(["fake_good"], preset="smoke", seed=0, out=tmp_path)
        assert fake.CALLS == []
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    run_studies(["fake_good"], preset="smoke", seed=0, out=tmp_path)  # the holder is gone
    assert len(fake.CALLS) == 1


def test_run_json_lists_every_study_run_into_the_folder(fake, tmp_path) -> None:
    run_studies(["fake_good"], preset="smoke", seed=0, out=tmp_path)
    run_studies(["fake_crash"], preset="quick", seed=3, out=tmp_path)
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["studies"] == ["fake_good", "fake_crash"]
    assert (info["preset"], info["seed"]) == ("quick", 3)
    assert [(r["preset"], r["studies"]) for r in info["earlier_runs"]] == [("smoke", ["fake_good"])]


def test_a_resume_at_another_precision_is_refused(tmp_path) -> None:
    from etude.runtime import Distributed
    from etude.studies.record import write_record

    study = get_study("bruno")
    settings = study.preset("smoke")
    task = Task("bruno", STUDIES["bruno"], "smoke", 0, str(tmp_path), True, settings)
    write_record(tmp_path, run_record(task, study))
    check_record(tmp_path, run_record(task, study))  # the same run continues
    other = Task(
        "bruno",
        STUDIES["bruno"],
        "smoke",
        0,
        str(tmp_path),
        True,
        settings,
        Distributed(accelerator="cpu", precision="bf16-mixed"),
    )
    with pytest.raises(CheckpointError, match=r'fabric.precision differs \(recorded "32-true", now "bf16-mixed"\)'):
        check_record(tmp_path, run_record(other, study))
