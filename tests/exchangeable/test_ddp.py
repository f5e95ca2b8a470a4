"""BRUNO training under 2-rank CPU DDP (gloo) equals one process on the global batch.

The oracle is ``train_bruno`` without a fabric (plain PyTorch, one process, the whole global batch of
sequences and its dequantization noise). Two ranks, each on its half of the sequences of every global
batch, end with the same parameters (flow and process, for TP, GP and the no-flow TP) and record the
same training and validation losses and kept step (in float64: see the helper's docstring; asserted by
tests/runtime/test_ddp.py on the shared launch, ``ddp_train.check``); the
optimizer keeps its two param groups (the process parameters at ``lr x process_lr_mult``, without
weight decay) through ``fabric.setup``; a checkpoint written at world size 2 resumes at world size 1
and one written at world size 1 resumes at world size 2, both to the uninterrupted result. The study
itself runs on 2 ranks from the CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.ddp_support import helper as ddp_helper
from tests.ddp_support import max_difference, reproduced_on_two_ranks_and_one, shared_run, skip_on_windows

from etude.runtime import load_checkpoint

ATOL = 1e-6
pytestmark = skip_on_windows


@pytest.fixture(scope="module")
def ddp_run():
    """The shared 2-rank launch's bruno folder, the helper, initial weights and one-process oracle runs."""
    helper = ddp_helper("bruno")
    work = shared_run() / "bruno"
    runs = helper.oracle(work)
    return helper, work, {k: v[0] for k, v in runs.items()}, {k: (v[1], v[2]) for k, v in runs.items()}


def _assert_same_log(found: dict, expected: dict) -> None:
    ddp_helper("bruno").assert_same_log(found, expected)


def test_checkpoint_of_two_ranks_resumes_in_one_process_with_its_param_groups(ddp_run):
    helper, work, _, oracle = ddp_run
    stored = load_checkpoint(work / "b.pt")  # rank 0's, interrupted after STOP steps
    assert stored["step"] == helper.STOP and len(stored["losses"]) == helper.STOP
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


def test_reproduce_on_two_ranks_matches_one_process_and_rank_one_writes_nothing():
    files = {"run.json", "result.json", "bits_per_dim.png", "tp.pt", "gp.pt", "tp_no_flow.pt"}
    two, one = reproduced_on_two_ranks_and_one("bruno", files)
    assert two["metrics"]["best_step"] == one["metrics"]["best_step"]
    for label, values in one["metrics"]["best_val_nats_per_dim"].items():
        assert two["metrics"]["best_val_nats_per_dim"][label] == pytest.approx(values, abs=1e-5), label
    for label, splits in one["metrics"]["bits_per_dim"].items():
        for split, values in splits.items():
            assert two["metrics"]["bits_per_dim"][label][split] == pytest.approx(values, abs=2e-4), (label, split)
