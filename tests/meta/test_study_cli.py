"""End to end: `etude reproduce metavae --preset smoke`, its result, plots and resumption."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from etude.cli import main
from etude.errors import BadInputError
from etude.meta.study import MetaVaeStudy
from etude.studies import get_study

PNG = b"\x89PNG\r\n\x1a\n"
CLAIMS = ["mog_clustering", "rotation_probe", "scale_probe", "codes_stay_put"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("metavae") / "run"
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETUDE_PROGRESS", "0")
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            status = main(["reproduce", "metavae", "--preset", "smoke", "--out", str(out)])
    return status, out / "metavae", stdout.getvalue()


def test_smoke_run_exits_0_with_every_claim_decided_or_marked(smoke):
    status, folder, stdout = smoke
    assert status == 0, stdout
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert (result["study"], result["preset"]) == ("metavae", "smoke")
    assert [c["id"] for c in result["claims"]] == CLAIMS
    verdicts = {c["id"]: c["verdict"] for c in result["claims"]}
    # smoke is below every claim's stated minimum size: nothing may be decided
    assert verdicts == {"mog_clustering": "inconclusive", "rotation_probe": "inconclusive", "scale_probe": "not-run",
                        "codes_stay_put": "inconclusive"}
    for claim in result["claims"][:2]:
        assert "MetaVAE" in claim["measured"] and "VAE" in claim["measured"] and claim["paper"]
    methods = {"MetaVAE", "VAE", "NS", "VHE"}
    assert set(result["metrics"]["mog_error"]) == methods | {"k-means (raw points)"}
    assert set(result["metrics"]["rotation_probe"]) == methods | {"raw pixels"}
    for key in ("mog_error", "rotation_probe"):
        for values in result["metrics"][key].values():
            assert len(values) == 1 and all(0.0 <= v <= 1.0 for v in values)
    assert set(result["metrics"]["code_stability"]) == methods | {"raw pixels"}
    assert all(len(v) == 1 and v[0] > 0 for v in result["metrics"]["code_stability"].values())
    paired = result["metrics"]["mog_vae_minus_metavae"]
    assert paired["pairs"] == 4 and paired["low"] <= paired["mean"] <= paired["high"]
    assert result["settings"]["mog_steps"] == MetaVaeStudy.presets["smoke"].mog_steps


def test_smoke_run_writes_png_plots_and_checkpoints(smoke):
    _, folder, _ = smoke
    result = json.loads((folder / "result.json").read_text())
    assert sorted(result["artifacts"]) == ["code_stability.png", "mog_clustering.png", "mog_example.png",
                                           "rotation_probe.png"]
    for name in result["artifacts"]:
        assert (folder / name).read_bytes()[:8] == PNG
    assert len(list((folder / "checkpoints").glob("*.pt"))) == 8  # 4 models x (MoG, rotations)


def test_resuming_a_finished_run_reproduces_its_figures(smoke):
    _, folder, _ = smoke
    first = json.loads((folder / "result.json").read_text())["metrics"]
    study = get_study("metavae")
    again = study.run(study.preset("smoke"), 0, Path(folder), resume=True)
    assert json.loads(json.dumps(again.metrics)) == first


def test_presets_meet_the_brief():
    study = MetaVaeStudy()
    assert {"smoke", "quick", "long", "full"} <= set(study.presets)
    assert study.presets["long"].scales and study.presets["long"].seeds >= 5
    assert study.presets["quick"].seeds >= 3 and study.presets["full"].scales
    assert study.preset("smoke", {"seeds": "2"}).seeds == 2
    with pytest.raises(BadInputError, match="unknown preset field"):
        study.preset("smoke", {"epochs": "3"})
