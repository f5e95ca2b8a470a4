"""End to end: `etude reproduce lola --preset smoke`, then `etude report`, run once per module."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from etude.cli import main
from etude.studies import SCHEMA_VERSION

LOLA_CLAIMS = ["nl_defect", "lola_cooperate", "mp_nash", "pg_like_exact", "lola_om", "coin_own", "coin_reward"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class SmokeRun:
    status: int
    out_dir: Path
    stdout: str


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> SmokeRun:
    """`etude reproduce lola --preset smoke --seed 0 --out TMP`, in process (about 20 s)."""
    out_dir = tmp_path_factory.mktemp("smoke") / "run"
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETUDE_PROGRESS", "0")
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            status = main(["reproduce", "lola", "--preset", "smoke", "--seed", "0", "--out", str(out_dir)])
    return SmokeRun(status, out_dir, stdout.getvalue())


@pytest.fixture(scope="module")
def lola_result(smoke_run: SmokeRun) -> dict:
    assert smoke_run.status == 0, smoke_run.stdout
    return json.loads((smoke_run.out_dir / "lola" / "result.json").read_text())


def test_reproduce_exits_0_and_summarises(smoke_run: SmokeRun) -> None:
    assert smoke_run.status == 0
    lines = smoke_run.stdout.splitlines()
    assert lines[0].startswith("lola [")
    assert "CRASHED" not in lines[0]
    for claim_id in LOLA_CLAIMS:
        assert f"{claim_id}: inconclusive" in lines[0]
    assert lines[-1].startswith(f"results in {smoke_run.out_dir};")


def test_result_json_is_ok_with_four_decided_claims(lola_result: dict) -> None:
    assert lola_result["status"] == "ok", lola_result["error"]
    assert lola_result["error"] == ""
    assert (lola_result["study"], lola_result["preset"], lola_result["seed"]) == ("lola", "smoke", 0)
    assert lola_result["schema_version"] == SCHEMA_VERSION
    claims = lola_result["claims"]
    assert [c["id"] for c in claims] == LOLA_CLAIMS
    for claim in claims:
        assert claim["verdict"] in ("holds", "fails", "inconclusive"), claim
        assert claim["measured"], claim
        # the smoke preset is below every claim's stated minimum size, so none may be decided
        assert claim["verdict"] == "inconclusive", claim
    assert lola_result["settings"]["seeds"] == 16  # the smoke preset, not quick
    assert lola_result["wall_time_s"] > 0.0


def test_metrics_are_finite_rewards(lola_result: dict) -> None:
    metrics = lola_result["metrics"]
    # per-step IPD rewards lie in [-3, 0]; fractions in [0, 1]
    for key in ("nl_mean", "lola_mean", "la_mean", "pg_lola_mean", "pg_nl_mean"):
        assert -3.0 <= metrics[key] <= 0.0, (key, metrics[key])
    for key in ("lola_cooperating", "lola_tft", "nl_tft", "mp_nash_lola", "mp_nash_nl"):
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    assert -1.0 <= metrics["pg_cosine_median"] <= 1.0
    assert "\n" in metrics["tournament"]


def test_every_artifact_exists(smoke_run: SmokeRun, lola_result: dict) -> None:
    artifacts = lola_result["artifacts"]
    assert len(artifacts) == 8
    for name in artifacts:
        path = smoke_run.out_dir / "lola" / name
        assert path.is_file(), path
        assert path.read_bytes().startswith(PNG_SIGNATURE), path


def test_run_json_records_the_run(smoke_run: SmokeRun, lola_result: dict) -> None:
    info = json.loads((smoke_run.out_dir / "run.json").read_text())
    assert (info["preset"], info["seed"], info["studies"]) == ("smoke", 0, ["lola"])


def test_report_contains_every_claim(smoke_run: SmokeRun, lola_result: dict, capsys) -> None:
    assert main(["report", str(smoke_run.out_dir)]) == 0
    out, err = capsys.readouterr()
    report = smoke_run.out_dir / "report.md"
    assert out.splitlines() == [str(report), str(smoke_run.out_dir / "report.html")]
    text = report.read_text()
    for claim_id in LOLA_CLAIMS:
        assert f"**{claim_id}**" in text
    assert text.count("| inconclusive |\n") == len(LOLA_CLAIMS)  # the claims rows end with their verdict
    assert f"| lola | 0 | 0 | {len(LOLA_CLAIMS)} (seed 0) | 0 |" in text.splitlines()  # the summary
    for name in lola_result["artifacts"]:
        assert f"![{name}](./lola/{name})" in text
    assert "(missing)" not in text
    assert "> Note" not in text
    assert "### tournament" in text


def test_resume_keeps_the_finished_result(smoke_run: SmokeRun, lola_result: dict, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ETUDE_PROGRESS", "0")
    path = smoke_run.out_dir / "lola" / "result.json"
    before = path.read_bytes()
    args = ["reproduce", "lola", "--preset", "smoke", "--seed", "0", "--out", str(smoke_run.out_dir), "--resume"]
    assert main(args) == 0
    assert path.read_bytes() == before  # skipped, not rerun and rewritten
    # the summary shows the stored run's wall time, not a new one
    assert capsys.readouterr().out.startswith(f"lola [{lola_result['wall_time_s']:.1f} s]: ")


@pytest.mark.parametrize("damage", ["flipped_byte", "wrong_shape", "nan"])
def test_resume_from_a_damaged_checkpoint_is_one_line(smoke_run: SmokeRun, tmp_path, capsys, monkeypatch,
                                                      damage: str) -> None:
    """A flipped byte, a theta of another shape or a NaN in the first checkpoint: exit 2 naming it, no crash record."""
    import shutil

    from etude.runtime import load_checkpoint, save_checkpoint

    monkeypatch.setenv("ETUDE_PROGRESS", "0")
    out = tmp_path / "run"
    shutil.copytree(smoke_run.out_dir, out)
    (out / "lola" / "result.json").unlink()  # unfinished: --resume continues from the checkpoints
    path = out / "lola" / "checkpoints" / "ipd_nl.pt"
    if damage == "flipped_byte":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        state = load_checkpoint(path)
        theta = state["theta"]
        state["theta"] = theta[:, :-1] if damage == "wrong_shape" else theta.clone().fill_(float("nan"))
        save_checkpoint(path, state)  # a valid hash: the content itself is wrong
    args = ["reproduce", "lola", "--preset", "smoke", "--seed", "0", "--out", str(out), "--resume"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("etude: error: checkpoint ") and str(path) in err
    assert not (out / "lola" / "result.json").exists()  # refused, not recorded as a crashed study
