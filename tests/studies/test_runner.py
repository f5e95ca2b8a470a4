"""The runner: crashes are recorded, user errors propagate, resume keeps finished results."""

from __future__ import annotations

import json

import pytest
import torch

from etude.errors import BadInputError, CheckpointError
from etude.studies import Result, load_result, run_studies





@pytest.fixture
def three_threads():
    """torch set to 3 threads for the test (a value no study asks for), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


def _names(calls) -> list[str]:
    return [call[0] for call in calls]


def test_crash_is_recorded_and_the_next_study_still_runs(fake, tmp_path) -> None:
    results = run_studies(["fake_crash", "fake_good"], preset="smoke", seed=4, out=tmp_path)
    assert _names(fake.CALLS) == ["fake_crash", "fake_good"]
    crashed, good = results

    assert crashed.status == "crashed"
    assert crashed.error.splitlines()[0] == "RuntimeError: boom from the fake study"
    assert "Traceback" in crashed.error
    assert [(c.id, c.verdict) for c in crashed.claims] == [("fake_claim", "not-run")]
    on_disk = load_result(tmp_path / "fake_crash")
    assert on_disk is not None
    assert on_disk.status == "crashed"
    assert "boom from the fake study" in on_disk.error
    assert (on_disk.preset, on_disk.seed) == ("smoke", 4)

    assert good.status == "ok"
    assert [(c.id, c.verdict) for c in good.claims] == [("fake_claim", "holds")]
    stored = load_result(tmp_path / "fake_good")
    assert stored == good
    assert (tmp_path / "fake_good" / "plot.png").read_bytes() == fake.PNG_BYTES
    assert stored.artifacts == ["plot.png"]


def test_runner_fills_in_preset_seed_settings_and_versions(fake, tmp_path) -> None:
    (result,) = run_studies(["fake_good"], preset="full", seed=7, out=tmp_path)
    assert (result.preset, result.seed) == ("full", 7)  # the study left preset empty
    assert result.settings == {"preset": "full", "steps": 100, "lr": 0.5, "flag": False, "label": "full"}
    assert set(result.versions) >= {"etude", "python", "torch", "numpy"}
    assert result.wall_time_s >= 0.0
    (call,) = fake.CALLS
    assert call == ("fake_good", fake.FakePreset(steps=100, label="full"), 7, False)


@pytest.mark.parametrize(("study", "error"), [("fake_checkpoint", CheckpointError),
                                              ("fake_bad_input", BadInputError)])
def test_user_errors_propagate(fake, tmp_path, study: str, error: type) -> None:
    with pytest.raises(error):
        run_studies([study, "fake_good"], preset="smoke", out=tmp_path)
    assert _names(fake.CALLS) == [study]  # nothing after it ran
    assert not (tmp_path / study / "result.json").exists()  # not recorded as a crash


def test_unknown_study_fails_before_anything_runs(fake, tmp_path) -> None:
    out = tmp_path / "run"
    with pytest.raises(BadInputError) as info:
        run_studies(["fake_good", "nosuchstudy"], preset="smoke", out=out)
    assert "'nosuchstudy'" in str(info.value)
    assert "fake_good" in str(info.value)  # the known names are listed
    assert fake.CALLS == []
    assert not out.exists()


def test_overrides_with_two_studies_are_refused(fake, tmp_path) -> None:
    out = tmp_path / "run"
    with pytest.raises(BadInputError, match="one study"):
        run_studies(["fake_good", "fake_crash"], preset="smoke", out=out, overrides={"steps": "3"})
    assert fake.CALLS == []
    assert not out.exists()


def test_overrides_with_one_study_reach_run(fake, tmp_path) -> None:
    (result,) = run_studies(["fake_good"], preset="smoke", out=tmp_path, overrides={"steps": "3", "flag": "1"})
    assert fake.CALLS[0][1] == fake.FakePreset(steps=3, flag=True, label="smoke")
    assert result.settings["steps"] == 3
    assert result.settings["flag"] is True
    assert json.loads((tmp_path / "run.json").read_text())["overrides"] == {"steps": "3", "flag": "1"}


def test_bad_override_fails_before_anything_runs(fake, tmp_path) -> None:
    with pytest.raises(BadInputError, match="'nosuchfield'"):
        run_studies(["fake_good"], preset="smoke", out=tmp_path / "run", overrides={"nosuchfield": "1"})
    assert fake.CALLS == []
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("preset", ["huge", "Smoke", ""])
def test_unknown_preset_is_refused(fake, tmp_path, preset: str) -> None:
    with pytest.raises(BadInputError, match="preset"):
        run_studies(["fake_good"], preset=preset, out=tmp_path / "run")
    assert fake.CALLS == []


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_is_refused(fake, tmp_path, seed) -> None:
    with pytest.raises(BadInputError, match="seed"):
        run_studies(["fake_good"], preset="smoke", seed=seed, out=tmp_path / "run")
    assert fake.CALLS == []


def test_resume_skips_a_finished_study_with_the_same_preset_and_seed(fake, tmp_path) -> None:
    first = run_studies(["fake_good"], preset="smoke", seed=1, out=tmp_path)
    stored_text = (tmp_path / "fake_good" / "result.json").read_text()
    assert len(fake.CALLS) == 1

    again = run_studies(["fake_good"], preset="smoke", seed=1, out=tmp_path, resume=True)
    assert len(fake.CALLS) == 1  # not run again
    assert again == first
    assert (tmp_path / "fake_good" / "result.json").read_text() == stored_text

    # another seed or preset would continue another run's checkpoints: refused before anything runs
    with pytest.raises(CheckpointError, match=r"fake_good: seed differs \(recorded 1, now 2\)"):
        run_studies(["fake_good"], preset="smoke", seed=2, out=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match=r"fake_good: preset differs \(recorded \"smoke\", now \"quick\"\)"):
        run_studies(["fake_good"], preset="quick", seed=1, out=tmp_path, resume=True)
    assert len(fake.CALLS) == 1
    assert (tmp_path / "fake_good" / "result.json").read_text() == stored_text


def test_without_resume_a_finished_study_runs_again(fake, tmp_path) -> None:
    run_studies(["fake_good"], preset="smoke", seed=1, out=tmp_path)
    run_studies(["fake_good"], preset="smoke", seed=1, out=tmp_path)
    assert fake.CALLS[0][3] is False
    assert len(fake.CALLS) == 2


def test_resume_reruns_a_crashed_study(fake, tmp_path) -> None:
    run_studies(["fake_crash"], preset="smoke", seed=0, out=tmp_path)
    run_studies(["fake_crash"], preset="smoke", seed=0, out=tmp_path, resume=True)
    assert _names(fake.CALLS) == ["fake_crash", "fake_crash"]


def test_resume_reruns_when_result_json_is_unreadable(fake, tmp_path) -> None:
    (tmp_path / "fake_good").mkdir()
    (tmp_path / "fake_good" / "result.json").write_text("{not json")
    (result,) = run_studies(["fake_good"], preset="smoke", seed=0, out=tmp_path, resume=True)
    assert len(fake.CALLS) == 1
    assert load_result(tmp_path / "fake_good") == result


def test_run_json_is_written(fake, tmp_path) -> None:
    out = tmp_path / "nested" / "run"
    run_studies(["fake_good", "fake_crash"], preset="quick", seed=5, out=out)
    info = json.loads((out / "run.json").read_text())
    assert info["preset"] == "quick"
    assert info["seed"] == 5
    assert info["studies"] == ["fake_good", "fake_crash"]
    assert info["overrides"] == {}
    assert "torch" in info["versions"]
    assert info["started"]


def test_study_threads_apply_during_run_and_are_restored(fake, tmp_path, three_threads: int) -> None:
    run_studies(["fake_one_thread", "fake_good"], preset="smoke", out=tmp_path)
    assert fake.THREADS == [1, three_threads]  # threads=1 for the first; None keeps torch's setting
    assert torch.get_num_threads() == three_threads


def test_threads_are_restored_after_a_crash(fake, tmp_path, three_threads: int) -> None:
    (result,) = run_studies(["fake_crash"], preset="smoke", out=tmp_path)
    assert result.status == "crashed"
    assert torch.get_num_threads() == three_threads


def test_threads_are_restored_when_an_error_propagates(fake, tmp_path, three_threads: int) -> None:
    with pytest.raises(CheckpointError):
        run_studies(["fake_checkpoint"], preset="smoke", out=tmp_path)
    assert torch.get_num_threads() == three_threads


def test_load_result_of_a_missing_folder_is_none(tmp_path) -> None:
    assert load_result(tmp_path / "nothing") is None


def test_load_result_reads_what_write_stored(tmp_path) -> None:
    result = Result("x", "smoke", 0)
    result.write(tmp_path)
    assert load_result(tmp_path) == result


@pytest.mark.parametrize("text", ["[]", "null", "3"])
def test_load_result_of_non_object_json_is_none(tmp_path, text: str) -> None:
    (tmp_path / "result.json").write_text(text)
    assert load_result(tmp_path) is None
