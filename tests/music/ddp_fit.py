"""Helper for test_music_ddp.py: ``etude.music.training.fit`` under 2-rank CPU DDP (gloo).

Run as ``python ddp_fit.py WORK_DIR``. ``WORK_DIR/setup.pt`` (written by the test) holds the crops,
the model's sizes and its initial weights. Fabric's ``ddp`` launcher re-runs this script for rank 1.
Each rank then, from the same initial weights:

* A: trains ``STEPS`` steps and saves its parameters and losses to ``a_rank<r>.pt``;
* B: trains again but is interrupted after ``STOP`` steps, leaving rank 0's checkpoint ``b.pt``;
* C: resumes ``c.pt`` (written by the test in one process, interrupted) and saves ``c_rank<r>.pt``;
* D: with dropout 0.1, trains whole and interrupted-then-resumed (``d.pt``), saving both results and
  a draw of the global torch generator after training to ``d_rank<r>.pt``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from ddp_support import Stop, dying, on_two_ranks, save_rank

STEPS, STOP, EVERY = 6, 4, 2
BATCH, LR, SEED = 4, 3e-3, 5


def build(work: Path, dropout: float = 0.0):
    """The model at its initial weights (and ``dropout``) and the crops, from ``work/setup.pt``."""
    from etude.music import TransformerAutoencoder, TransformerConfig
    from etude.music.training import Crops
    from etude.runtime import load_checkpoint

    setup = load_checkpoint(work / "setup.pt")
    cfg = TransformerConfig(**{**setup["config"], "dropout": dropout})
    model = TransformerAutoencoder(cfg, setup["conditioning"], encoder_layers=1)
    model.load_state_dict(setup["model"])
    return model, Crops(setup["performance"], setup["melody"])


def train(work: Path, fabric=None, *, checkpoint=None, resume=False, stop=None, dropout=0.0):
    """``fit`` with the helper's settings; returns (model, losses), or (model, None) when interrupted."""
    from etude.music.training import fit

    model, data = build(work, dropout)
    data.select = dying(data.select, stop)  # one call per training step
    try:
        losses = fit(model, data, steps=STEPS, batch_size=BATCH, lr=LR,
                     seed=SEED, checkpoint=checkpoint, resume=resume, every=EVERY, show_progress=False, fabric=fabric)
    except Stop:
        return model, None
    return model, losses


def main(fabric, work: Path) -> None:
    model, losses = train(work, fabric)
    save_rank(fabric, work, "a", {"params": model.state_dict(), "losses": losses, "world_size": fabric.world_size})
    train(work, fabric, checkpoint=work / "b.pt", stop=STOP)
    fabric.barrier()
    model, losses = train(work, fabric, checkpoint=work / "c.pt", resume=True)
    save_rank(fabric, work, "c", {"params": model.state_dict(), "losses": losses})
    whole, _ = train(work, fabric, dropout=0.1)
    draw = torch.rand(4)  # the global generator, which drew this rank's dropout masks
    train(work, fabric, checkpoint=work / "d.pt", stop=STOP, dropout=0.1)
    fabric.barrier()
    resumed, _ = train(work, fabric, checkpoint=work / "d.pt", resume=True, dropout=0.1)
    save_rank(fabric, work, "d", {"whole": whole.state_dict(), "resumed": resumed.state_dict(), "draw": draw})


if __name__ == "__main__":
    on_two_ranks(main)
