"""Helper for the shared 2-rank launch (``ddp_support.shared_run``): a tiny linear regression under Fabric DDP.

Each rank trains on its half of every global batch, twice: by hand through ``make_fabric``'s set-up
(``fabric``: DDP averages the halves' mean-loss gradients) and through ``etude.runtime.train_loop``
(``loop``: the step returns its share of the global batch's mean, the loop scales by W); each saves its
final parameters to ``<case>_rank<r>.pt``. The oracle is plain full-batch SGD in one process.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from tests.ddp_support import save_rank
from torch import nn

SEED = 1234
STEPS = 6
GLOBAL_BATCH = 8
LR = 0.1
IN_FEATURES = 3
CASES = ("fabric", "loop")


def make_problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The seeded model and the data: ``x`` (steps, batch, in), ``y`` (steps, batch, 1)."""
    from etude.runtime import seed_everything

    generator = seed_everything(SEED)
    model = nn.Linear(IN_FEATURES, 1)
    x = torch.randn(STEPS, GLOBAL_BATCH, IN_FEATURES, generator=generator)
    w = torch.tensor([[1.5], [-2.0], [0.5]])
    y = x @ w + 0.3 + 0.1 * torch.randn(STEPS, GLOBAL_BATCH, 1, generator=generator)
    return model, x, y


def prepare(work: Path) -> None:
    """Nothing to write: every rank builds the problem from its seed."""


def by_hand(fabric) -> dict[str, torch.Tensor]:
    model, x, y = make_problem()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    model, optimizer = fabric.setup(model, optimizer)
    share = GLOBAL_BATCH // fabric.world_size
    rows = slice(fabric.global_rank * share, (fabric.global_rank + 1) * share)
    for step in range(STEPS):
        optimizer.zero_grad()
        fabric.backward(nn.functional.mse_loss(model(x[step, rows]), y[step, rows]))
        optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def through_the_loop(fabric=None) -> tuple[dict[str, torch.Tensor], list[float]]:
    from etude.runtime import shard, train_loop, world_size

    model, x, y = make_problem()
    ranks = world_size(fabric)

    def step(t: int, module: nn.Module) -> torch.Tensor:
        rows = shard(torch.arange(GLOBAL_BATCH), fabric)
        return nn.functional.mse_loss(module(x[t, rows]), y[t, rows]) / ranks

    result = train_loop(step, steps=STEPS, model=model, optimizer=torch.optim.SGD(model.parameters(), lr=LR),
                        kind="ddp-test", config={}, fabric=fabric, show_progress=False)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, result.losses


def main(fabric, work: Path) -> None:
    save_rank(fabric, work, "fabric", {"params": by_hand(fabric), "world_size": fabric.world_size})
    params, losses = through_the_loop(fabric)
    save_rank(fabric, work, "loop", {"params": params, "losses": losses, "world_size": fabric.world_size})


@functools.cache
def oracle(work: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[float]]:
    """Initial and final parameters, and losses, of plain full-batch SGD in one process."""
    model, x, y = make_problem()
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    losses = []
    for step in range(STEPS):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x[step]), y[step])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return initial, {k: v.detach().clone() for k, v in model.state_dict().items()}, losses


def check(work: Path, case: str) -> None:
    from etude.runtime import load_checkpoint

    ranks = [load_checkpoint(work / f"{case}_rank{r}.pt", expect={"world_size": 2}) for r in (0, 1)]
    initial, expected, losses = oracle(work)
    for name, value in expected.items():
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name
        assert torch.allclose(ranks[0]["params"][name], value, rtol=0, atol=1e-6), name
        assert (value - initial[name]).abs().max() > 1e-2, f"{name} barely moved"
    if case == "loop":
        assert ranks[0]["losses"] == pytest.approx(losses, abs=1e-6) and ranks[1]["losses"] == ranks[0]["losses"]
        one_process, _ = through_the_loop()
        for name, value in expected.items():
            assert torch.allclose(one_process[name], value, rtol=0, atol=1e-6), name

