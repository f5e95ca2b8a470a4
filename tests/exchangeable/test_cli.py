"""`etude reproduce bruno --preset smoke` end to end (about 10 s), then --resume from its checkpoints."""

import contextlib
import io
import json

import pytest

from etude.cli import main

CLAIMS = ["bpd_falls", "few_shot", "few_shot_gp", "tp_beats_gp", "samples_match_set"]


def _reproduce(out, *extra):
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETUDE_PROGRESS", "0")
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            status = main(["reproduce", "bruno", "--preset", "smoke", "--seed", "0", "--out", str(out), *extra])
    return status, stdout.getvalue()


def test_reproduce_bruno_smoke(tmp_path):
    status, stdout = _reproduce(tmp_path)
    assert status == 0, stdout
    result = json.loads((tmp_path / "bruno" / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert [c["id"] for c in result["claims"]] == CLAIMS
    for claim in result["claims"]:
        assert claim["measured"] and claim["verdict"] == "inconclusive"  # smoke is too small to tell
    for name in ("samples_unseen.png", "samples_seen.png", "bits_per_dim.png", "training.png"):
        assert name in result["artifacts"]
        assert (tmp_path / "bruno" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bpd = result["metrics"]["bits_per_dim"]
    assert set(bpd) == {"TP", "GP", "TP no flow", "TP dense", "GP dense"} and len(bpd["TP"]["unseen"]) == 20
    for name in ("tp.pt", "gp.pt", "tp_no_flow.pt", "tp_dense.pt", "gp_dense.pt"):
        assert (tmp_path / "bruno" / "checkpoints" / name).is_file()
    (tmp_path / "bruno" / "result.json").unlink()  # resume from the finished checkpoints, evaluate again
    again, _ = _reproduce(tmp_path, "--resume")
    assert again == 0
    resumed = json.loads((tmp_path / "bruno" / "result.json").read_text())
    assert resumed["metrics"] == result["metrics"]
    assert [c["measured"] for c in resumed["claims"]] == [c["measured"] for c in result["claims"]]
