"""End to end: `etude reproduce qmcvi --preset smoke`, stage resume, bad overrides, claims before running."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from etude.cli import main
from etude.errors import CheckpointError
from etude.studies import get_study

CLAIMS = ["variance_reduction", "ratio_grows", "faster_convergence", "growing_n"]
PNG = b"\x89PNG\r\n\x1a\n"


def _reproduce(out_dir: Path, *extra: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETUDE_PROGRESS", "0")
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = main(["reproduce", "qmcvi", "--preset", "smoke", "--seed", "0", "--out", str(out_dir), *extra])
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, str, dict]:
    out_dir = tmp_path_factory.mktemp("qmcvi") / "run"
    status, stdout, stderr = _reproduce(out_dir)
    assert status == 0, stderr
    return out_dir, stdout, json.loads((out_dir / "qmcvi" / "result.json").read_text())


def test_smoke_run_decides_nothing_and_writes_every_artifact(smoke):
    out_dir, stdout, result = smoke
    assert stdout.startswith("qmcvi [") and "CRASHED" not in stdout
    assert result["status"] == "ok" and result["preset"] == "smoke" and result["settings"]["sizes"] == [4, 16]
    assert [c["id"] for c in result["claims"]] == CLAIMS
    for claim in result["claims"]:  # the smoke preset is below every claim's stated minimum
        assert claim["verdict"] == "inconclusive" and claim["measured"] and claim["paper"], claim
    assert sorted(result["artifacts"]) == ["elbo_traces.png", "schedule.png", "variance_ratio.png"]
    for name in result["artifacts"]:
        assert (out_dir / "qmcvi" / name).read_bytes().startswith(PNG)


def test_smoke_metrics_are_sane(smoke):
    metrics = smoke[2]["metrics"]
    assert set(metrics["variance"]) == {"linear", "logistic", "hierarchical", "poisson", "bnn"}
    for phases in metrics["variance"].values():
        for phase in ("init", "trained"):
            assert len(phases[phase]["ratio"]) == 2 and all(r > 0 for r in phases[phase]["ratio"])
    assert metrics["schedule_stages"] == [2, 4, 8]
    assert all(v > 0 for v in metrics["schedule_stage_mc"] + metrics["schedule_stage_rqmc"])


def test_resume_from_stage_checkpoints_gives_the_same_claims(smoke):
    out_dir, _, result = smoke
    (out_dir / "qmcvi" / "result.json").unlink()
    status, _, stderr = _reproduce(out_dir, "--resume")
    assert status == 0, stderr
    again = json.loads((out_dir / "qmcvi" / "result.json").read_text())
    assert [c["measured"] for c in again["claims"]] == [c["measured"] for c in result["claims"]]


def test_a_foreign_stage_checkpoint_is_refused_on_resume(smoke):
    out_dir, _, _ = smoke
    (out_dir / "qmcvi" / "result.json").unlink()
    status, _, stderr = _reproduce(out_dir, "--resume", "--set", "lr=0.5")
    # the run record refuses first (etude.studies.record), before any stage checkpoint is read
    assert status == 2 and "settings.lr differs (recorded 0.01, now 0.5)" in stderr and stderr.count("\n") == 1
    with pytest.raises(CheckpointError, match="is from another run"):  # the stages' own check, behind it
        get_study("qmcvi").run(get_study("qmcvi").preset("smoke", {"lr": "0.5"}), 0, out_dir / "qmcvi", resume=True)


def test_unknown_model_override_is_a_one_line_error(tmp_path):
    status, _, stderr = _reproduce(tmp_path, "--set", 'models=["linear", "gp"]')
    assert status == 2 and "preset models must be among" in stderr and "'gp'" in stderr


def test_claims_are_listed_before_running():
    study = get_study("qmcvi")
    assert [c.id for c in study.claims()] == CLAIMS
    assert all(c.verdict == "not-run" and c.criterion for c in study.claims())
    assert {"smoke", "quick", "long", "full"} <= set(study.presets)
