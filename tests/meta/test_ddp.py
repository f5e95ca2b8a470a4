"""metavae training under 2-rank CPU DDP (gloo) equals one process on the global batch.

The oracle is ``fit`` without a fabric (plain PyTorch, one process, all B sets). Two ranks, each on
its B / 2 sets of every global batch and on the matching slice of the reparameterization noise
drawn for the whole batch, end with the same parameters and losses for every model (asserted by
tests/runtime/test_ddp.py on the shared launch, ``ddp_fit.check``); a checkpoint written at world size 2 resumes at world size 1
and one written at world size 1 resumes at world size 2, both to the uninterrupted result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.ddp_support import helper as ddp_helper
from tests.ddp_support import max_difference, reproduced_on_two_ranks_and_one, shared_run, skip_on_windows

from etude.meta import sample_mog_family
from etude.runtime import load_checkpoint

ATOL = 1e-6
pytestmark = skip_on_windows


@pytest.fixture(scope="module")
def ddp_run():
    """The shared 2-rank launch's metavae folder, the helper and its one-process oracle."""
    helper = ddp_helper("metavae")
    work = shared_run() / "metavae"
    return helper, work, {name: (params, losses) for name, (_, params, losses) in helper.oracle(work).items()}


def test_checkpoint_of_two_ranks_resumes_in_one_process(ddp_run):
    helper, work, oracle = ddp_run
    assert load_checkpoint(work / "b.pt")["step"] == helper.STOP  # rank 0 wrote it, interrupted after STOP steps
    model, resumed = helper.train(work, checkpoint=work / "b.pt", resume=True)
    assert max_difference(model.state_dict(), oracle["MetaVAE"][0]) < ATOL
    assert resumed == pytest.approx(oracle["MetaVAE"][1], abs=1e-5)


def test_checkpoint_of_one_process_resumes_on_two_ranks(ddp_run):
    _, work, oracle = ddp_run
    for r in (0, 1):
        state = load_checkpoint(work / f"c_rank{r}.pt")
        assert max_difference(state["params"], oracle["MetaVAE"][0]) < ATOL
        assert state["losses"] == pytest.approx(oracle["MetaVAE"][1], abs=1e-5)


def test_reproduce_on_two_ranks_matches_one_process_and_rank_one_writes_nothing():
    two, one = reproduced_on_two_ranks_and_one("metavae", {"result.json", "mog_clustering.png", "mog_MetaVAE_0.pt"})
    assert "fabric" not in one["settings"]
    for key in ("mog_error", "rotation_probe", "code_stability"):
        for method, values in one["metrics"][key].items():
            assert two["metrics"][key][method] == pytest.approx(values, abs=1e-4), (key, method)


def test_the_full_preset_trains_through_fabric_at_bf16_mixed(tmp_path):
    from etude.cli import main

    tiny = ["seeds=1", "mog_train=8", "mog_test=4", "mog_points=60", "mog_steps=3", "mog_hidden=8", "mog_context=20",
            "digit_steps=3", "digit_hidden=8", "digit_z=4", "batch=4", "rotations=[-60, -30, 0, 30, 60, 90]",
            "scales=[]", "kmeans_restarts=1", "dataset=digits", "pool=1200"]  # MNIST: tests/data/test_studies.py
    sets = [arg for item in tiny for arg in ("--set", item)]
    assert main(["reproduce", "metavae", "--preset", "full", *sets, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "metavae" / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert result["settings"]["fabric"] == {"accelerator": "auto", "precision": "bf16-mixed"}
    state = load_checkpoint(tmp_path / "metavae" / "checkpoints" / "rotate_NS_0.pt")
    assert state["step"] == 3 and len(state["losses"]) == 3 and all(map(torch.isfinite, torch.tensor(state["losses"])))
    assert all(v.dtype == torch.float32 for v in state["model"].values())  # mixed: the weights stay float32


def test_bf16_mixed_rounds_the_loss_but_follows_the_float32_run():
    """A one-device CPU Fabric at bf16-mixed really computes in bf16 (the losses differ) and stays close to 32-true."""
    from etude.meta import MetaVAE, fit
    from etude.runtime import Distributed

    data = sample_mog_family(6, generator=torch.Generator().manual_seed(0)).x
    runs = {}
    for precision in ("32-true", "bf16-mixed"):
        torch.manual_seed(0)
        model = MetaVAE(2, 2, 6, hidden=16)
        runs[precision] = fit(model, data, 4, n_sets=4, n_x=10, n_context=10, lr=3e-3, seed=1,
                              fabric=Distributed(accelerator="cpu", precision=precision).make_fabric())
    assert runs["bf16-mixed"] != runs["32-true"]
    assert runs["bf16-mixed"] == pytest.approx(runs["32-true"], rel=0.05)


def test_a_bf16_checkpoint_resumes_only_at_bf16(tmp_path):
    """The precision is part of the checkpoint's configuration, as for pwcca and BRUNO; 32-bit ones keep theirs."""
    from etude.errors import CheckpointError
    from etude.meta import MetaVAE, fit
    from etude.runtime import Distributed

    data = sample_mog_family(6, generator=torch.Generator().manual_seed(0)).x
    kw = dict(n_sets=4, n_x=10, n_context=10, lr=3e-3, seed=1)
    for precision in ("bf16-mixed", "32-true"):
        torch.manual_seed(0)
        fabric = Distributed(accelerator="cpu", precision=precision).make_fabric()
        fit(MetaVAE(2, 2, 6, hidden=16), data, 2, checkpoint=tmp_path / f"{precision}.pt", fabric=fabric, **kw)
    assert load_checkpoint(tmp_path / "bf16-mixed.pt")["config"]["precision"] == "bf16-mixed"
    assert "precision" not in load_checkpoint(tmp_path / "32-true.pt")["config"]
    with pytest.raises(CheckpointError):
        fit(MetaVAE(2, 2, 6, hidden=16), data, 2, checkpoint=tmp_path / "bf16-mixed.pt", resume=True, **kw)
    assert len(fit(MetaVAE(2, 2, 6, hidden=16), data, 2, checkpoint=tmp_path / "32-true.pt", resume=True, **kw)) == 2
