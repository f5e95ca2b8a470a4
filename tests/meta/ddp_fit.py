"""metavae's part of the shared 2-rank launch (``ddp_support.shared_run``): ``etude.meta.training.fit`` under DDP.

``prepare`` writes ``setup.pt`` (the family and each model's initial weights) and ``c.pt`` (one process,
interrupted after ``STOP`` steps). In the launch each rank, from those initial weights:

* A: trains every model of ``MODELS`` ``STEPS`` steps and saves parameters and losses to ``a_rank<r>.pt``;
* B: trains the MetaVAE again, interrupted after ``STOP`` steps, leaving rank 0's checkpoint ``b.pt``;
* C: resumes ``c.pt`` (written by the test in one process, interrupted) and saves ``c_rank<r>.pt``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from tests.ddp_support import Stop, assert_equal_states, dying_attribute, max_difference, save_rank

STEPS, STOP, EVERY = 6, 4, 2
SETS, LR, SEED = 4, 3e-3, 5
MODELS = {"MetaVAE": "disjoint", "NS": "self", "VHE": "disjoint", "VAE": "none"}
"""Each model with its context mode: NS and VHE also draw the set latent c's noise."""
CASES = tuple(MODELS)
ATOL = 1e-6


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



def prepare(work: Path) -> None:
    from etude.meta import sample_mog_family
    from etude.meta.experiments import build_models
    from etude.runtime import save_checkpoint

    data = sample_mog_family(6, generator=torch.Generator().manual_seed(0)).x[:, :40]
    models = {name: m.state_dict() for name, (m, _) in build_models(2, 2, 8, 6, "gaussian", 40, 0).items()}
    save_checkpoint(work / "setup.pt", {"data": data, "models": models})
    assert train(work, checkpoint=work / "c.pt", stop=STOP)[1] is None  # 1 process, interrupted


@functools.cache
def oracle(work: Path) -> dict:
    """Each model's initial weights, and its parameters and losses after ``fit`` in one process."""
    from etude.runtime import load_checkpoint

    initial = load_checkpoint(work / "setup.pt")["models"]
    runs = {name: train(work, name) for name in MODELS}
    return {name: (initial[name], m.state_dict(), losses) for name, (m, losses) in runs.items()}


def check(work: Path, name: str) -> None:
    from etude.runtime import load_checkpoint

    ranks = [load_checkpoint(work / f"a_rank{r}.pt", expect={"world_size": 2})[name] for r in (0, 1)]
    initial, params, losses = oracle(work)[name]
    assert_equal_states(ranks[1]["params"], ranks[0]["params"])  # DDP keeps them in step
    assert max_difference(ranks[0]["params"], params) < ATOL
    assert max_difference(params, initial) > 1e-3, "training barely moved"
    assert ranks[0]["losses"] == pytest.approx(losses, abs=1e-5) and ranks[1]["losses"] == ranks[0]["losses"]
