"""Two-rank CPU DDP (gloo) under make_fabric equals one process on the full global batch.

The oracle is a plain torch loop (no Fabric) over the same seeded model and data: with the
loss a mean over equal halves, DDP's averaged gradient equals the full-batch gradient, so
after every SGD step both ranks must hold the single-process parameters.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch
from ddp_support import load_helper, run_helper, skip_on_windows
from torch import nn

from etude.runtime import load_checkpoint

HELPER = Path(__file__).with_name("ddp_train.py")
TIMEOUT_S = 120


def _single_process(helper: ModuleType) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Initial and final parameters of plain full-batch SGD on the helper's problem."""
    model, x, y = helper.make_problem()
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=helper.LR)
    for step in range(helper.STEPS):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x[step]), y[step]).backward()
        optimizer.step()
    return initial, {k: v.detach().clone() for k, v in model.state_dict().items()}


@skip_on_windows
def test_two_rank_ddp_matches_single_process(tmp_path: Path) -> None:
    run_helper(HELPER, tmp_path, "2", timeout=TIMEOUT_S)  # it trained on gloo
    ranks = [load_checkpoint(tmp_path / f"rank{r}.pt", expect={"world_size": 2}) for r in (0, 1)]
    initial, expected = _single_process(load_helper(HELPER))
    for name, value in expected.items():
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name
        assert torch.allclose(ranks[0]["params"][name], value, rtol=0, atol=1e-6), name
        assert (value - initial[name]).abs().max() > 1e-2, f"{name} barely moved"
