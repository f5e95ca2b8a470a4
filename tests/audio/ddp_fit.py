"""amae's part of the shared 2-rank launch (``ddp_support.shared_run``): ``etude.audio.training`` under DDP.

``prepare`` writes ``c.pt`` (one process, interrupted after ``STOP`` steps). In the launch each rank builds
the same models (``build``) on the same symbol sequences (``pieces``) and:

* A: trains every level of ``LEVELS`` ``STEPS`` steps (AMAE with its diversity loss, plain VQ, and VQ
  with EMA, k-means init and dead-code restarts) and a two-level hierarchy with its prior
  (``fit_hierarchy``), saving parameters, buffers and curves to ``a_rank<r>.pt``;
* B: trains the AMAE level again, interrupted after ``STOP`` steps, leaving rank 0's checkpoint ``b.pt``;
* C: resumes ``c.pt`` (written by the test in one process, interrupted) and saves ``c_rank<r>.pt``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from tests.ddp_support import Stop, assert_equal_states, dying_attribute, max_difference, save_rank

STEPS, STOP, EVERY = 6, 4, 2
BATCH, LENGTH, LR, SEED = 4, 32, 3e-3, 5
LEVELS = {
    "amae": {"diversity": 0.5},
    "vq": {"bottleneck": "vq", "code_dim": 4},
    "vq_ema_restart": {"bottleneck": "vq", "code_dim": 4, "ema": 0.9, "kmeans_init": True, "restart_threshold": 2.0},
}
"""Level settings beside the common tiny ones: hop 4, 8 codes over a 64-symbol alphabet."""
CASES = (*LEVELS, "hierarchy")
ATOL = 1e-6


def pieces() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, 64, (300,), generator=g) for _ in range(3)]


def build(name: str):
    """The level ``name`` at its initial weights (seeded), its first-symbol marginal fitted."""
    from etude.audio.hierarchy import AutoEncoder, LevelConfig

    torch.manual_seed(1)
    level = AutoEncoder(LevelConfig(classes=64, hop=4, codes=8, residual=4, skip=8, layers=2, encoder_channels=4,
                                    **LEVELS[name]))
    level.decoder.fit_first(pieces())
    return level


def train(name: str = "amae", fabric=None, *, checkpoint=None, resume=False, stop=None):
    """``train_model`` with the helper's settings; returns (level, curve), or (level, None) when interrupted."""
    from etude.audio import training

    level = build(name)
    # k-means seeds and restart rows come from torch's global generator: rank 0's equals the one process's,
    # the other ranks' differ, so they must take rank 0's decisions
    torch.manual_seed(2 + 1000 * (0 if fabric is None else fabric.global_rank))
    try:
        with dying_attribute(training, "random_crops", stop):
            curve = training.train_model(level, lambda x: level.losses(x)[0], pieces(), steps=STEPS, batch=BATCH,
                                         length=LENGTH, lr=LR, seed=SEED, checkpoint=checkpoint, resume=resume,
                                         tag=name, checkpoint_every=EVERY, fabric=fabric)
    except Stop:
        return level, None
    return level, curve


def hierarchy(fabric=None):
    """A two-level AMAE stack with its prior, trained by ``fit_hierarchy``; returns (model, curves)."""
    from etude.audio.hierarchy import Hierarchy, HierarchyConfig, LevelConfig
    from etude.audio.training import fit_hierarchy

    torch.manual_seed(3)
    levels = (LevelConfig(classes=64, hop=4, codes=8, residual=4, skip=8, layers=2, encoder_channels=4),
              LevelConfig(classes=8, hop=2, codes=8, residual=4, skip=8, layers=2, encoder_channels=4))
    model = Hierarchy(HierarchyConfig(levels, prior_residual=4, prior_layers=2))
    curves = fit_hierarchy(model, pieces(), steps=3, prior_steps=3, batch=BATCH, length=[LENGTH, 16], prior_length=8,
                           lr=LR, seed=SEED, fabric=fabric)
    return model, curves


def main(fabric, work: Path) -> None:
    results = {}
    for name in LEVELS:
        level, curve = train(name, fabric)
        results[name] = {"state": level.state_dict(), "curve": curve}
    model, curves = hierarchy(fabric)
    results["hierarchy"] = {"state": model.state_dict(), "curve": curves}
    save_rank(fabric, work, "a", {**results, "world_size": fabric.world_size})
    train(fabric=fabric, checkpoint=work / "b.pt", stop=STOP)
    fabric.barrier()
    level, curve = train(fabric=fabric, checkpoint=work / "c.pt", resume=True)
    save_rank(fabric, work, "c", {"state": level.state_dict(), "curve": curve})



def prepare(work: Path) -> None:
    assert train(checkpoint=work / "c.pt", stop=STOP)[1] is None  # 1 process, interrupted


@functools.cache
def oracle(work: Path) -> tuple[dict, dict, int]:
    """The one-process runs (state, curve) by case, each level's initial state, and the dead codes restarted."""
    from etude.audio.bottlenecks import VectorQuantizer

    real, moved = VectorQuantizer.restart_dead, []

    def counting(self, flat):
        moved.append(real(self, flat))
        return moved[-1]

    VectorQuantizer.restart_dead = counting
    try:
        runs = {name: train(name) for name in LEVELS}
    finally:
        VectorQuantizer.restart_dead = real
    runs["hierarchy"] = hierarchy()
    initial = {name: build(name).state_dict() for name in LEVELS}
    return {k: (m.state_dict(), c) for k, (m, c) in runs.items()}, initial, sum(moved)


def check(work: Path, name: str) -> None:
    from etude.runtime import load_checkpoint

    ranks = [load_checkpoint(work / f"a_rank{r}.pt", expect={"world_size": 2})[name] for r in (0, 1)]
    runs, initial, _ = oracle(work)
    state, curve = runs[name]
    assert_equal_states(ranks[1]["state"], ranks[0]["state"])  # the ranks stay in step
    assert max_difference(ranks[0]["state"], state) < ATOL
    if name in initial:
        assert max_difference(state, initial[name]) > 1e-3, "training barely moved"
    expected = curve if name != "hierarchy" else [v for c in curve.values() for v in c]
    found = ranks[0]["curve"] if name != "hierarchy" else [v for c in ranks[0]["curve"].values() for v in c]
    assert found == pytest.approx(expected, abs=1e-5)
