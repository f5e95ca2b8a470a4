"""Helper for test_bruno_ddp.py: ``etude.exchangeable.training.train_bruno`` under 2-rank CPU DDP (gloo).

Run as ``python ddp_train.py WORK_DIR``. ``WORK_DIR/setup.pt`` (written by the test) holds the training
images and labels, a dequantized validation batch and each model's initial weights. Fabric's ``ddp``
launcher re-runs this script for rank 1. Each rank then, from the same initial weights:

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

from pathlib import Path

import torch
from ddp_support import Stop, dying, on_two_ranks, save_rank

MODELS = {"tp": ("realnvp", "tp"), "gp": ("realnvp", "gp"), "tp_no_flow": ("none", "tp")}
STEPS, STOP, EVERY, EVAL_EVERY, WARMUP = 6, 4, 2, 3, 2
BATCH, LENGTH, LR, PROCESS_LR_MULT, SEED = 4, 5, 3e-3, 30.0, 7


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


if __name__ == "__main__":
    on_two_ranks(main)
