"""report.md over a run folder with good, crashed, missing, old and unreadable results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etude.errors import BadInputError
from etude.studies import SCHEMA_VERSION, Claim, Result, collect_results, run_studies, write_report





def _section(text: str, name: str) -> str:
    """The lines of report section `## name`, up to the next `## ` heading."""
    start = text.index(f"\n## {name}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


@pytest.fixture
def mixed_run(fake, tmp_path) -> Path:
    """A run folder: fake_good, fake_crash (via the runner), plus three hand-made broken folders."""
    run_studies(["fake_good", "fake_crash"], preset="smoke", seed=2, out=tmp_path)
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "checkpoints").mkdir()

    old = Result("oldstudy", "quick", 0, claims=[Claim("old_claim", "Old.", "p", "c", "1.0", "holds")])
    old.schema_version = 0
    old.write(tmp_path / "oldstudy")

    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "result.json").write_bytes(b"\x80\x81 not json {")
    (tmp_path / "notes.txt").write_text("a file, not a study folder")
    return tmp_path


def test_collect_results_notes_every_folder(mixed_run: Path) -> None:
    entries = {name: (result, note) for name, result, note in collect_results(mixed_run)}
    assert sorted(entries) == ["fake_crash", "fake_good", "garbled", "oldstudy", "unfinished"]
    good, note = entries["fake_good"]
    assert good is not None and good.status == "ok" and note == ""
    crashed, note = entries["fake_crash"]
    assert crashed is not None
    assert note == "the study crashed: RuntimeError: boom from the fake study"
    assert entries["unfinished"] == (None, "no result.json: the study did not finish")
    old, note = entries["oldstudy"]
    assert old is not None
    assert "schema version 0" in note and str(SCHEMA_VERSION) in note
    result, note = entries["garbled"]
    assert result is None
    assert note.startswith("unreadable result.json")


def test_report_lists_each_folder_with_a_note(mixed_run: Path) -> None:
    path = write_report(mixed_run)
    assert path == mixed_run / "report.md"
    text = path.read_text()
    assert text.startswith("# etude reproduction report")
    assert "Preset `smoke`, seed 2, started " in text  # from run.json

    table = text[text.index("## Claims"):text.index("\n## fake_crash")]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 5  # one claim per study with claims, one row per broken folder
    row = {line.split(" | ")[0][2:]: line for line in rows}
    assert row["fake_good"].endswith("| holds |")
    assert "**fake_claim**" in row["fake_good"]
    assert row["fake_crash"].endswith("| not-run (crashed) |")
    assert "no result.json" in row["unfinished"]
    assert "unreadable result.json" in row["garbled"]
    assert row["oldstudy"].endswith("| holds |")

    for name in ("fake_good", "fake_crash", "unfinished", "oldstudy", "garbled"):
        assert f"\n## {name}\n" in text
    assert "notes.txt" not in text
    assert "> Note: the study crashed: RuntimeError: boom from the fake study" in _section(text, "fake_crash")
    assert "> Note: no result.json" in _section(text, "unfinished")
    assert "> Note: result.json has schema version 0" in _section(text, "oldstudy")
    assert "> Note: unreadable result.json" in _section(text, "garbled")
    good = _section(text, "fake_good")
    assert "> Note" not in good
    assert "- **fake_claim**: a fake note" in good
    assert "![plot.png](./fake_good/plot.png)" in good


def test_report_without_run_json_or_studies(tmp_path) -> None:
    text = write_report(tmp_path).read_text()
    assert "No study folders found in this run." in text
    assert "Preset" not in text


def test_report_with_unreadable_run_json(tmp_path) -> None:
    (tmp_path / "run.json").write_text("{")
    assert "run.json is unreadable." in write_report(tmp_path).read_text()


def test_artifacts_embedded_linked_or_missing(tmp_path) -> None:
    folder = tmp_path / "arts"
    folder.mkdir()
    (folder / "plot.png").write_bytes(b"\x89PNG")
    (folder / "figure.svg").write_text("<svg/>")
    (folder / "table.csv").write_text("a,b\n")
    result = Result("arts", "smoke", 0, artifacts=["plot.png", "figure.svg", "table.csv", "gone.png", "gone.csv"],
                    metrics={"tournament": "header\n\n| a | b |", "scalar": 1.0, "one_line": "x"})
    result.write(folder)
    section = _section(write_report(tmp_path).read_text(), "arts")
    assert "![plot.png](./arts/plot.png)" in section.splitlines()
    assert "![figure.svg](./arts/figure.svg)" in section.splitlines()
    assert "- [table.csv](./arts/table.csv)" in section.splitlines()  # linked, not embedded, not missing
    assert "- gone.png (missing)" in section.splitlines()
    assert "- gone.csv (missing)" in section.splitlines()
    assert "![gone.png]" not in section
    # multi-line string metrics become subsections; one-line ones do not
    assert "### tournament\n\nheader\n\n| a | b |" in section
    assert "### one_line" not in section and "### scalar" not in section


def test_pipes_in_claims_are_escaped(tmp_path) -> None:
    claim = Claim("c", "a | b", "p", "crit").decide("1 | 2", True)
    Result("pipes", "smoke", 0, claims=[claim]).write(tmp_path / "pipes")
    text = write_report(tmp_path).read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| pipes | **")]
    assert "a \\| b" in row and "1 \\| 2" in row
    assert row.count(" | ") == 5  # six unescaped cells


@pytest.mark.parametrize("make", ["missing", "file"])
def test_report_of_a_non_folder_raises_bad_input(tmp_path, make: str) -> None:
    target = tmp_path / "nonexistent"
    if make == "file":
        target.write_text("x")
    with pytest.raises(BadInputError) as info:
        write_report(target)
    assert str(target) in str(info.value)
    assert not (tmp_path / "nonexistent" / "report.md").exists()


# Broken folders are reported instead of failing.


@pytest.mark.parametrize("text", ["[]", "null"])
def test_report_survives_non_object_result_json(tmp_path, text: str) -> None:
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "result.json").write_text(text)
    assert "unreadable result.json" in write_report(tmp_path).read_text()


def test_report_survives_crashed_result_without_error_text(tmp_path) -> None:
    Result("quiet", "smoke", 0, status="crashed", error="").write(tmp_path / "quiet")
    assert "crashed" in write_report(tmp_path).read_text()


def test_report_survives_result_json_that_cannot_be_read(tmp_path) -> None:
    (tmp_path / "dir" / "result.json").mkdir(parents=True)
    assert "unreadable result.json" in write_report(tmp_path).read_text()


def test_unreadable_schema_field_types_are_noted(tmp_path) -> None:
    (tmp_path / "typed").mkdir()
    data = Result("typed", "smoke", 0).to_dict()
    data["claims"] = [{"id": "only_an_id"}, Claim("kept", "s", "p", "c", "1", "holds").__dict__]
    (tmp_path / "typed" / "result.json").write_text(json.dumps(data))
    text = write_report(tmp_path).read_text()
    assert "claim 0 lacks statement, paper, criterion" in text
    assert "**kept**: s" in text  # the valid claim is still reported
