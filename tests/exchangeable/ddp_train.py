"""bruno's part of the shared 2-rank launch (``ddp_support.shared_run``): ``train_bruno`` under DDP.

``prepare`` writes ``setup.pt`` (the training images and labels, a dequantized validation batch and each
model's initial weights) and ``c.pt`` (one process, interrupted after ``STOP`` steps). In the launch each
rank, from the same initial weights:

* A: trains each model of ``MODELS`` for ``STEPS`` steps, saving its parameters and log to ``a_<model>_rank<r>.pt``;
* B: trains the TP model again but is interrupted after ``STOP`` steps, leaving rank 0's checkpoint ``b.pt``;
* C: resumes ``c.pt`` (written by the test in one process, interrupted) and saves ``c_rank<r>.pt``.

The process parameters learn at ``LR x PROCESS_LR_MULT`` after a ``WARMUP`` of frozen steps, so the
optimizer's two param groups must survive ``fabric.setup`` for the ranks to match one process. Models
and data are float64: in float32, at nu = 1000, a few of the 64 dimensions have a gradient of the
Student-t's nu logit c (a small difference of lgamma terms of size ~1e3) within rounding of zero, so
it depends on the summation order (one batch or two shards), and Adam, which divides a gradient by
its own size, takes full steps on that noise (up to 0.06 apart in c after 6 steps).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from tests.ddp_support import Stop, assert_equal_states, dying, max_difference, save_rank

MODELS = {"tp": ("realnvp", "tp"), "gp": ("realnvp", "gp"), "tp_no_flow": ("none", "tp")}
STEPS, STOP, EVERY, EVAL_EVERY, WARMUP = 6, 4, 2, 3, 2
BATCH, LENGTH, LR, PROCESS_LR_MULT, SEED = 4, 5, 3e-3, 30.0, 7
CASES = tuple(MODELS)
ATOL = 1e-6


def build(work: Path, name: str, dtype: torch.dtype = torch.float64):
    """The model ``name`` at its initial weights, from ``work/setup.pt``, in ``dtype``."""
    from etude.exchangeable import Bruno
    from etude.runtime import load_checkpoint

    flow, process = MODELS[name]
    model = Bruno.build((1, 8, 8), 17, flow=flow, process=process, hidden=4, blocks=1)
    model.load_state_dict(load_checkpoint(work / "setup.pt")["models"][name])
    return model.to(dtype)


def train(work: Path, name: str = "tp", fabric=None, *, checkpoint=None, resume=False, stop=None,
          dtype: torch.dtype = torch.float64):
    """``train_bruno`` with the helper's settings; returns (model, log), or (model, None) when interrupted."""
    from etude.exchangeable import sample_sequences, train_bruno
    from etude.runtime import load_checkpoint

    setup = load_checkpoint(work / "setup.pt")

    def batches(generator: torch.Generator) -> torch.Tensor:
        return sample_sequences(setup["x"].to(dtype), setup["y"], BATCH, LENGTH, generator)[0]

    model = build(work, name, dtype)
    try:
        log = train_bruno(model, dying(batches, stop), STEPS, lr=LR, weight_decay=0.01, warmup=WARMUP, process_scale=0.1,
                          process_lr_mult=PROCESS_LR_MULT, val=setup["val"].to(dtype), eval_every=EVAL_EVERY, seed=SEED,
                          checkpoint=checkpoint, checkpoint_every=EVERY, resume=resume, fabric=fabric)
    except Stop:
        return model, None
    return model, log


def main(fabric, work: Path) -> None:
    for name in MODELS:
        model, log = train(work, name, fabric)
        save_rank(fabric, work, f"a_{name}", {"params": model.state_dict(), "log": log.state(),
                                              "world_size": fabric.world_size})
    train(work, "tp", fabric, checkpoint=work / "b.pt", stop=STOP)
    fabric.barrier()
    model, log = train(work, "tp", fabric, checkpoint=work / "c.pt", resume=True)
    save_rank(fabric, work, "c", {"params": model.state_dict(), "log": log.state()})



def prepare(work: Path) -> None:
    from etude.exchangeable import Bruno, load_digit_splits, sample_sequences
    from etude.flows import dequantize
    from etude.runtime import save_checkpoint

    splits = load_digit_splits(0)
    g = torch.Generator().manual_seed(1)
    val = dequantize(sample_sequences(splits.val_x, splits.val_y, 4, LENGTH, g)[0], g)
    models = {}
    for k, name in enumerate(MODELS):
        torch.manual_seed(k)
        flow, process = MODELS[name]
        models[name] = Bruno.build((1, 8, 8), 17, flow=flow, process=process, hidden=4, blocks=1).state_dict()
    save_checkpoint(work / "setup.pt", {"x": splits.train_x, "y": splits.train_y, "val": val, "models": models})
    assert train(work, checkpoint=work / "c.pt", stop=STOP)[1] is None  # 1 process, interrupted


@functools.cache
def oracle(work: Path) -> dict:
    """Each model's initial weights, and its parameters and log after ``train_bruno`` in one process."""
    from etude.runtime import load_checkpoint

    initial = load_checkpoint(work / "setup.pt")["models"]
    runs = {name: train(work, name) for name in MODELS}
    return {name: (initial[name], m.state_dict(), log.state()) for name, (m, log) in runs.items()}


def assert_same_log(found: dict, expected: dict) -> None:
    assert found["loss"] == pytest.approx(expected["loss"], abs=1e-5)
    assert found["val_loss"] == pytest.approx(expected["val_loss"], abs=1e-5)
    assert (found["val_steps"], found["best_step"]) == (expected["val_steps"], expected["best_step"])


def check(work: Path, name: str) -> None:
    from etude.runtime import load_checkpoint

    ranks = [load_checkpoint(work / f"a_{name}_rank{r}.pt", expect={"world_size": 2}) for r in (0, 1)]
    initial, params, log = oracle(work)[name]
    assert_equal_states(ranks[1]["params"], ranks[0]["params"])
    assert max_difference(ranks[0]["params"], params) <= ATOL
    assert_same_log(ranks[0]["log"], log)
    assert ranks[1]["log"] == ranks[0]["log"]
    # the process logits moved at lr x 30: more than Adam's ~lr per step could take them at lr x 1
    moved = (params["process.b"] - initial["process.b"]).abs().max().item()
    assert moved > 3 * (STEPS - WARMUP) * LR, moved
