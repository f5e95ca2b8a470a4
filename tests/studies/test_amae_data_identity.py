"""amae records the soundfont it renders with, so a resume with another one (or a changed one) refuses."""

from __future__ import annotations

import hashlib

import pytest

import etude.audio.render as render
from etude.errors import CheckpointError
from etude.studies import get_study, run_studies
from etude.studies.record import RECORD_NAME, check_record, write_record
from etude.studies.registry import STUDIES
from etude.studies.task import Task, run_record


def _task(tmp_path) -> tuple[Task, object]:
    study = get_study("amae")
    return Task("amae", STUDIES["amae"], "smoke", 0, str(tmp_path / "amae"), True, study.preset("smoke")), study


def _use(monkeypatch, path) -> None:
    monkeypatch.setattr(render, "find_soundfont", lambda: path)


def test_the_record_names_the_soundfont_by_path_and_digest(tmp_path, monkeypatch) -> None:
    font = tmp_path / "grand.sf2"
    font.write_bytes(b"sfbk" * 100)
    _use(monkeypatch, font)
    task, study = _task(tmp_path)
    identity = run_record(task, study)["data"]["soundfont"]
    assert identity["path"] == str(font.resolve())
    assert identity["sha256"] == hashlib.sha256(font.read_bytes()).hexdigest()


def test_a_resume_with_another_soundfont_is_refused(tmp_path, monkeypatch) -> None:
    grand, small = tmp_path / "grand.sf2", tmp_path / "small.sf2"
    grand.write_bytes(b"grand piano samples")
    small.write_bytes(b"a thinner piano")
    _use(monkeypatch, grand)
    task, study = _task(tmp_path)
    write_record(task.study_dir, run_record(task, study))
    (tmp_path / "amae" / "model.pt").write_bytes(b"a checkpoint trained on the grand piano")
    check_record(task.study_dir, run_record(task, study))  # the same soundfont resumes
    _use(monkeypatch, small)
    with pytest.raises(CheckpointError, match=r"data\.soundfont\.(path|sha256) differs") as refused:
        run_studies(["amae"], preset="smoke", seed=0, out=tmp_path, resume=True)
    assert "\n" not in str(refused.value)
    assert sorted(p.name for p in (tmp_path / "amae").iterdir()) == ["model.pt", RECORD_NAME]  # nothing ran


def test_a_changed_soundfont_under_the_same_path_is_refused(tmp_path, monkeypatch) -> None:
    font = tmp_path / "piano.sf2"
    font.write_bytes(b"version one")
    _use(monkeypatch, font)
    task, study = _task(tmp_path)
    write_record(task.study_dir, run_record(task, study))
    font.write_bytes(b"version two, another size")
    with pytest.raises(CheckpointError, match=r"data\.soundfont\.sha256 differs"):
        check_record(task.study_dir, run_record(task, study))


def test_no_soundfont_is_recorded_as_none(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(render, "SOUNDFONTS", ())
    monkeypatch.delenv("ETUDE_SOUNDFONT", raising=False)
    task, study = _task(tmp_path)
    assert run_record(task, study)["data"] == {"soundfont": None}
