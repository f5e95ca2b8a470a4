"""transformer_ae training under 2-rank CPU DDP (gloo) equals one process on the global batch.

The oracle is ``fit`` without a fabric (plain PyTorch, one process, the whole global batch of
crops). Two ranks, each on its half of every global batch with the PAD-aware loss scaling, end with
the same parameters and record the same losses (asserted by tests/runtime/test_ddp.py on the
shared launch, ``ddp_fit.check``); a checkpoint written at world size 2
resumes at world size 1 and one written at world size 1 resumes at world size 2, both to the
uninterrupted result.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.ddp_support import assert_equal_states, reproduced_on_two_ranks_and_one, shared_run, skip_on_windows
from tests.ddp_support import helper as ddp_helper

from etude.music import TransformerAutoencoder, TransformerConfig, make_crops
from etude.runtime import load_checkpoint
pytestmark = skip_on_windows


@pytest.fixture(scope="module")
def ddp_run():
    """The shared 2-rank launch's transformer_ae folder, the helper and its one-process oracle."""
    helper = ddp_helper("transformer_ae")
    work = shared_run() / "transformer_ae"
    initial, params, losses = helper.oracle(work)
    return helper, work, initial, params, losses


def _assert_close(found: dict, expected: dict) -> None:
    ddp_helper("transformer_ae").assert_close(found, expected)


def test_checkpoint_of_two_ranks_resumes_in_one_process(ddp_run):
    helper, work, _, oracle, losses = ddp_run
    stored = load_checkpoint(work / "b.pt")
    assert len(stored["losses"]) == helper.STOP  # interrupted after STOP steps
    model, resumed = helper.train(work, checkpoint=work / "b.pt", resume=True)
    _assert_close(model.state_dict(), oracle)
    assert resumed == pytest.approx(losses, abs=1e-5)


def test_checkpoint_of_one_process_resumes_on_two_ranks(ddp_run):
    _, work, _, oracle, losses = ddp_run
    for r in (0, 1):
        state = load_checkpoint(work / f"c_rank{r}.pt")
        _assert_close(state["params"], oracle)
        assert state["losses"] == pytest.approx(losses, abs=1e-5)


def test_with_dropout_each_rank_draws_its_own_masks_and_resume_repeats_them(ddp_run):
    _, work, _, _, _ = ddp_run
    ranks = [load_checkpoint(work / f"d_rank{r}.pt") for r in (0, 1)]
    assert not torch.equal(ranks[0]["draw"], ranks[1]["draw"])  # different generators, so different masks
    for state in ranks:
        for name, value in state["whole"].items():
            assert torch.equal(state["resumed"][name], value), name  # resume at the same world size is exact
            assert torch.equal(ranks[1]["whole"][name], value), name  # DDP keeps the ranks in step


def test_reproduce_on_two_ranks_matches_one_process_and_rank_one_writes_nothing():
    files = {"run.json", "result.json", "training_loss.png", "performance_s0.pt"}
    two, one = reproduced_on_two_ranks_and_one("transformer_ae", files)  # the 6 smoke pieces parsed once, shared
    assert two["metrics"]["nll_nats_per_token"] == pytest.approx(one["metrics"]["nll_nats_per_token"], abs=1e-5)


def test_bf16_mixed_trains_on_the_cpu(bach):
    """A forward/backward smoke test at bf16-mixed through a one-device CPU Fabric (equality is checked at 32-true)."""
    from etude.music import fit
    from etude.runtime import Distributed

    crops = make_crops(bach.pieces, seconds=1.0, max_tokens=24, per_piece=2, seed=0)
    cfg = TransformerConfig(dim=16, heads=2, layers=1, ff=32, max_len=24, dropout=0.0)
    fabric = Distributed(accelerator="cpu", precision="bf16-mixed").make_fabric()
    runs = {}
    for precision in ("32-true", "bf16-mixed"):
        torch.manual_seed(0)
        model = TransformerAutoencoder(cfg, "performance", encoder_layers=1)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        losses = fit(model, crops, steps=3, batch_size=4, lr=3e-3, seed=0, show_progress=False,
                     fabric=fabric if precision == "bf16-mixed" else None)
        runs[precision] = losses
        assert all(torch.isfinite(v).all() for v in model.state_dict().values())
        assert model.decoder.head.weight.dtype == torch.float32  # mixed: the weights stay float32
        assert (model.decoder.head.weight - before["decoder.head.weight"]).abs().max() > 1e-4
    assert runs["bf16-mixed"] != runs["32-true"]  # bf16 rounding really happened
    assert runs["bf16-mixed"] == pytest.approx(runs["32-true"], abs=0.05)


def test_the_full_preset_trains_through_fabric_at_bf16_mixed(tmp_path, monkeypatch):
    import json

    from etude.cli import main
    from etude.music import load_corpus

    load_corpus("bach", limit=6, cache=tmp_path / "cache", show_progress=False)
    monkeypatch.setenv("ETUDE_CACHE", str(tmp_path / "cache"))
    tiny = ["pieces=6", "seconds=1.5", "max_tokens=24", "per_piece=1", "eval_per_piece=1", "dim=16", "heads=2",
            "layers=1", "encoder_layers=1", "ff=16", "steps=2", "batch_size=2", "samples=1", "seeds=1",
            "dataset=chorales"]  # the full sizes on the chorales (MAESTRO: tests/data/test_studies.py)
    sets = [arg for item in tiny for arg in ("--set", item)]
    assert main(["reproduce", "transformer_ae", "--preset", "full", *sets, "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "transformer_ae" / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert result["settings"]["fabric"] == {"accelerator": "auto", "precision": "bf16-mixed"}
    nll = result["metrics"]["nll_nats_per_token"]
    assert all(4.0 < v < 7.0 for v in nll.values()), nll  # finite, near log(391) after 2 steps
