"""BRUNO training under 2-rank CPU DDP (gloo) equals one process on the global batch.

The oracle is ``train_bruno`` without a fabric (plain PyTorch, one process, the whole global batch of
sequences and its dequantization noise). Two ranks, each on its half of the sequences of every global
batch, must end with the same parameters (flow and process, for TP, GP and the no-flow TP) and record
the same training and validation losses and kept step (in float64: see the helper's docstring); the
optimizer keeps its two param groups (the process parameters at ``lr x process_lr_mult``, without
weight decay) through ``fabric.setup``; a checkpoint written at world size 2 resumes at world size 1
and one written at world size 1 resumes at world size 2, both to the uninterrupted result. The study
itself runs on 2 ranks from the CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp_support import (assert_equal_states, load_helper, max_difference, reproduce_on_two_ranks_and_one, run_helper,
                          skip_on_windows)

from etude.exchangeable import load_digit_splits, sample_sequences
from etude.flows import dequantize
from etude.runtime import load_checkpoint, save_checkpoint

HELPER = Path(__file__).with_name("ddp_train.py")
ATOL = 1e-6
pytestmark = skip_on_windows


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """The helper's 2-rank results, and the one-process oracle runs beside them."""
    torch.set_num_threads(1)
    helper = load_helper(HELPER)
    work = tmp_path_factory.mktemp("bruno_ddp")
    splits = load_digit_splits(0)
    g = torch.Generator().manual_seed(1)
    val = dequantize(sample_sequences(splits.val_x, splits.val_y, 4, helper.LENGTH, g)[0], g)
    models = {}
    for k, name in enumerate(helper.MODELS):
        torch.manual_seed(k)
        flow, process = helper.MODELS[name]
        from etude.exchangeable import Bruno

        models[name] = Bruno.build((1, 8, 8), 17, flow=flow, process=process, hidden=4, blocks=1).state_dict()
    save_checkpoint(work / "setup.pt", {"x": splits.train_x, "y": splits.train_y, "val": val, "models": models})
    oracle = {name: helper.train(work, name) for name in helper.MODELS}
    assert helper.train(work, checkpoint=work / "c.pt", stop=helper.STOP)[1] is None  # 1 process, interrupted
    run_helper(HELPER, work)
    return helper, work, models, {name: (m.state_dict(), log.state()) for name, (m, log) in oracle.items()}


def _assert_same_log(found: dict, expected: dict) -> None:
    assert found["loss"] == pytest.approx(expected["loss"], abs=1e-5)
    assert found["val_loss"] == pytest.approx(expected["val_loss"], abs=1e-5)
    assert (found["val_steps"], found["best_step"]) == (expected["val_steps"], expected["best_step"])


@pytest.mark.parametrize("name", ["tp", "gp", "tp_no_flow"])
def test_two_ranks_end_with_the_single_process_parameters(ddp_run, name):
    helper, work, initial, oracle = ddp_run
    ranks = [load_checkpoint(work / f"a_{name}_rank{r}.pt", expect={"world_size": 2}) for r in (0, 1)]
    params, log = oracle[name]
    assert_equal_states(ranks[1]["params"], ranks[0]["params"])
    assert max_difference(ranks[0]["params"], params) <= ATOL
    _assert_same_log(ranks[0]["log"], log)
    assert ranks[1]["log"] == ranks[0]["log"]
    # the process logits moved at lr x 30: more than Adam's ~lr per step could take them at lr x 1
    moved = (params["process.b"] - initial[name]["process.b"]).abs().max().item()
    assert moved > 3 * (helper.STEPS - helper.WARMUP) * helper.LR, moved


def test_checkpoint_of_two_ranks_resumes_in_one_process_with_its_param_groups(ddp_run):
    helper, work, _, oracle = ddp_run
    stored = load_checkpoint(work / "b.pt")  # rank 0's, interrupted after STOP steps
    assert stored["step"] == helper.STOP and len(stored["log"]["loss"]) == helper.STOP
    groups = stored["optimizer"]["param_groups"]
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(helper.LR * helper.PROCESS_LR_MULT, 0.0),
                                                              (helper.LR, 0.01)]
    model, log = helper.train(work, checkpoint=work / "b.pt", resume=True)
    assert max_difference(model.state_dict(), oracle["tp"][0]) <= ATOL
    _assert_same_log(log.state(), oracle["tp"][1])


def test_checkpoint_of_one_process_resumes_on_two_ranks(ddp_run):
    _, work, _, oracle = ddp_run
    for r in (0, 1):
        state = load_checkpoint(work / f"c_rank{r}.pt")
        assert max_difference(state["params"], oracle["tp"][0]) <= ATOL
        _assert_same_log(state["log"], oracle["tp"][1])


def test_bf16_mixed_trains_on_the_cpu(ddp_run):
    """A forward/backward smoke test at bf16-mixed through a one-device CPU Fabric (equality is checked at 32-true)."""
    from etude.runtime import Distributed

    helper, work, initial, _ = ddp_run
    fabric = Distributed(accelerator="cpu", precision="bf16-mixed").make_fabric()
    runs = {f: helper.train(work, "tp", f, dtype=torch.float32) for f in (None, fabric)}
    (plain, plain_log), (model, log) = runs[None], runs[fabric]
    params = model.state_dict()
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in params.values())
    flow = {k: v for k, v in plain.state_dict().items() if k.startswith("flow.")}
    assert 0 < max_difference(params, flow) < 0.05  # bf16 rounding really happened, in the same training
    assert max_difference(params, initial["tp"]) > 1e-2
    assert log.loss != plain_log.loss and log.loss == pytest.approx(plain_log.loss, abs=0.05)


def test_reproduce_on_two_ranks_matches_one_process_and_rank_one_writes_nothing(tmp_path):
    files = {"run.json", "result.json", "bits_per_dim.png", "tp.pt", "gp.pt", "tp_no_flow.pt"}
    two, one = reproduce_on_two_ranks_and_one(["reproduce", "bruno", "--preset", "smoke"], tmp_path, files)
    assert two["metrics"]["best_step"] == one["metrics"]["best_step"]
    for label, values in one["metrics"]["best_val_nats_per_dim"].items():
        assert two["metrics"]["best_val_nats_per_dim"][label] == pytest.approx(values, abs=1e-5), label
    for label, splits in one["metrics"]["bits_per_dim"].items():
        for split, values in splits.items():
            assert two["metrics"]["bits_per_dim"][label][split] == pytest.approx(values, abs=2e-4), (label, split)
