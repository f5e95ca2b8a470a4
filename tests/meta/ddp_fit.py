"""Helper for test_meta_ddp.py: ``etude.meta.training.fit`` under 2-rank CPU DDP (gloo).

Run as ``python ddp_fit.py WORK_DIR``; Fabric's ``ddp`` launcher re-runs this script for rank 1.
Each rank, from the initial weights in ``WORK_DIR/setup.pt`` (written by the test):

* A: trains every model of ``MODELS`` ``STEPS`` steps and saves parameters and losses to ``a_rank<r>.pt``;
* B: trains the MetaVAE again, interrupted after ``STOP`` steps, leaving rank 0's checkpoint ``b.pt``;
* C: resumes ``c.pt`` (written by the test in one process, interrupted) and saves ``c_rank<r>.pt``.
"""

from __future__ import annotations

from pathlib import Path

from ddp_support import Stop, dying_attribute, on_two_ranks, save_rank

STEPS, STOP, EVERY = 6, 4, 2
SETS, LR, SEED = 4, 3e-3, 5
MODELS = {"MetaVAE": "disjoint", "NS": "self", "VHE": "disjoint", "VAE": "none"}
"""Each model with its context mode: NS and VHE also draw the set latent c's noise."""


def build(work: Path, name: str):
    """The model ``name`` at its initial weights and the family [M, P, 2], from ``work/setup.pt``."""
    from etude.meta.experiments import build_models
    from etude.runtime import load_checkpoint

    setup = load_checkpoint(work / "setup.pt")
    model, _ = build_models(2, 2, 8, setup["data"].shape[0], "gaussian", setup["data"].shape[1], 0)[name]
    model.load_state_dict(setup["models"][name])
    return model, setup["data"]


def train(work: Path, name: str = "MetaVAE", fabric=None, *, checkpoint=None, resume=False, stop=None):
    """``fit`` with the helper's settings; returns (model, losses), or (model, None) when interrupted."""
    from etude.meta import training

    model, data = build(work, name)
    try:
        with dying_attribute(training, "sample_batch", stop):
            losses = training.fit(model, data, STEPS, n_sets=SETS, n_x=5, n_context=5, min_context=2,
                                  context=MODELS[name], lr=LR, seed=SEED, checkpoint=checkpoint, resume=resume,
                                  checkpoint_every=EVERY, fabric=fabric)
    except Stop:
        return model, None
    return model.cpu(), losses


def main(fabric, work: Path) -> None:
    runs = {name: train(work, name, fabric) for name in MODELS}
    results = {name: {"params": m.state_dict(), "losses": losses} for name, (m, losses) in runs.items()}
    save_rank(fabric, work, "a", {**results, "world_size": fabric.world_size})
    train(work, fabric=fabric, checkpoint=work / "b.pt", stop=STOP)
    fabric.barrier()
    model, losses = train(work, fabric=fabric, checkpoint=work / "c.pt", resume=True)
    save_rank(fabric, work, "c", {"params": model.state_dict(), "losses": losses})


if __name__ == "__main__":
    on_two_ranks(main)
