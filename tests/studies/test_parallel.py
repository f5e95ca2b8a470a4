"""`run_studies(jobs > 1)`: worker processes give the results of a sequential run, isolate
crashes (even a dying process), propagate user errors, resume, and lay out several seeds."""

from __future__ import annotations

import json

import pytest

from etude.errors import BadInputError, CheckpointError
from etude.studies import collect_results, load_result, run_studies


def _comparable(result) -> dict:
    data = result.to_dict()
    data.pop("wall_time_s")
    data["error"] = data["error"].splitlines()[:1]  # the traceback's frames differ by process
    return data


_NAMES = ["fake_seed", "fake_crash", "fake_one_thread"]


@pytest.fixture(scope="module")
def one_and_two_jobs(tmp_path_factory):
    """The same studies and seeds run with jobs=1 and jobs=2, once for the module (worker processes take
    seconds to start): (sequential results, parallel results, the jobs=2 folder, the study calls made here)."""
    import sys
    from pathlib import Path

    from etude.studies import registry

    out = tmp_path_factory.mktemp("jobs")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(Path(__file__).resolve().parent))
        import fake_studies

        mp.setattr(registry, "STUDIES", {**registry.STUDIES, **fake_studies.REGISTRY})
        fake_studies.CALLS.clear()
        sequential = run_studies(_NAMES, preset="smoke", seed=[3, 4], out=out / "one", jobs=1)
        parallel = run_studies(_NAMES, preset="smoke", seed=[3, 4], out=out / "two", jobs=2)
        calls = list(fake_studies.CALLS)
        fake_studies.CALLS.clear()
        yield sequential, parallel, out / "two", calls, fake_studies
    sys.modules.pop("fake_studies", None)


def test_two_jobs_give_the_results_of_one_job(one_and_two_jobs) -> None:
    sequential, parallel, two, calls, fake = one_and_two_jobs
    names = _NAMES
    assert [_comparable(r) for r in parallel] == [_comparable(r) for r in sequential]
    assert [(r.study, r.seed) for r in parallel] == [(n, s) for n in names for s in (3, 4)]
    draws = {r.seed: r.metrics["draw"] for r in parallel if r.study == "fake_seed"}
    assert draws[3] != draws[4]  # the seed reached the study's generator
    for name in names:
        for seed in (3, 4):
            stored = load_result(two / name / f"seed-{seed}")
            assert stored is not None and stored.seed == seed
    assert calls == [(n, fake.FakePreset(steps=2, label="smoke"), s, False)
                     for n in names for s in (3, 4)]  # jobs=1 ran here, jobs=2 elsewhere


def test_a_dying_worker_is_recorded_and_the_others_finish(fake, tmp_path) -> None:
    dying, good = run_studies(["fake_dying", "fake_good"], preset="smoke", seed=1, out=tmp_path, jobs=2)
    assert dying.status == "crashed"
    assert "exit code 3" in dying.error
    assert load_result(tmp_path / "fake_dying").status == "crashed"
    assert good.status == "ok"
    assert load_result(tmp_path / "fake_good") == good


@pytest.mark.parametrize(("study", "error"), [("fake_checkpoint", CheckpointError),
                                              ("fake_bad_input", BadInputError)])
def test_user_errors_in_a_worker_propagate(fake, tmp_path, study: str, error: type) -> None:
    with pytest.raises(error):
        run_studies([study, "fake_good"], preset="smoke", out=tmp_path, jobs=2)
    assert not (tmp_path / study / "result.json").exists()


def test_resume_with_jobs_keeps_finished_results(fake, one_and_two_jobs) -> None:
    _, parallel, two, _, _ = one_and_two_jobs
    first = [r for r in parallel if r.study != "fake_crash"]  # a crashed study would run again
    again = run_studies(["fake_seed", "fake_one_thread"], preset="smoke", seed=[3, 4], out=two, jobs=2, resume=True)
    assert again == first  # wall times included: nothing ran again
    assert fake.CALLS == []


def test_several_seeds_are_reported_per_seed(fake, tmp_path) -> None:
    run_studies(["fake_good"], preset="smoke", seed=[0, 10, 2], out=tmp_path)
    names = [name for name, result, _ in collect_results(tmp_path)]
    assert names == ["fake_good/seed-0", "fake_good/seed-2", "fake_good/seed-10"]
    assert json.loads((tmp_path / "run.json").read_text())["seeds"] == [0, 10, 2]


@pytest.mark.parametrize("kwargs", [{"jobs": 0}, {"jobs": 1.5}, {"jobs": True}, {"seed": []},
                                    {"seed": [1, 1]}, {"seed": [-1]}, {"seed": [2**32]}])
def test_bad_jobs_and_seeds_are_refused(fake, tmp_path, kwargs) -> None:
    with pytest.raises(BadInputError):
        run_studies(["fake_good"], preset="smoke", out=tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def test_a_study_without_the_preset_fails_before_anything_runs(fake, tmp_path) -> None:
    with pytest.raises(BadInputError, match="no preset 'long'"):
        run_studies(["fake_good"], preset="long", out=tmp_path / "run")
    assert fake.CALLS == []


def test_running_every_study_skips_those_without_the_tier(fake, tmp_path, monkeypatch, capsys) -> None:
    from etude.studies import registry

    class Long(fake.GoodStudy):
        name = "fake_long"
        presets = {**fake.GoodStudy.presets, "long": fake.FakePreset(steps=50, label="long")}

    monkeypatch.setattr(fake, "LongStudy", Long, raising=False)
    monkeypatch.setattr(registry, "STUDIES", {"fake_good": "fake_studies:GoodStudy", "fake_long": "fake_studies:LongStudy"})
    (result,) = run_studies(None, preset="long", out=tmp_path)
    assert (result.study, result.settings["steps"]) == ("fake_long", 50)
    assert "no 'long' preset in fake_good; skipped" in capsys.readouterr().err
    monkeypatch.setattr(registry, "STUDIES", {"fake_good": "fake_studies:GoodStudy"})
    with pytest.raises(BadInputError, match="no study has a 'long' preset"):
        run_studies(None, preset="long", out=tmp_path / "none")
