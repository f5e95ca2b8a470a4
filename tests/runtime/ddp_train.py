"""Helper for test_runtime_ddp.py: a tiny linear regression trained under Fabric DDP.

Run as ``python ddp_train.py OUT_DIR [DEVICES]``. Fabric's ``ddp`` launcher re-runs this
script once per extra rank; every rank trains on its half of each global batch (gradients
are averaged across ranks by DDP) and saves its final parameters to ``OUT_DIR/rank<r>.pt``.
The test imports ``make_problem`` to train the same model in one process as the oracle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

SEED = 1234
STEPS = 6
GLOBAL_BATCH = 8
LR = 0.1
IN_FEATURES = 3


def make_problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The seeded model and the data: ``x`` (steps, batch, in), ``y`` (steps, batch, 1)."""
    from etude.runtime import seed_everything

    generator = seed_everything(SEED)
    model = nn.Linear(IN_FEATURES, 1)
    x = torch.randn(STEPS, GLOBAL_BATCH, IN_FEATURES, generator=generator)
    w = torch.tensor([[1.5], [-2.0], [0.5]])
    y = x @ w + 0.3 + 0.1 * torch.randn(STEPS, GLOBAL_BATCH, 1, generator=generator)
    return model, x, y


def main(out_dir: Path, devices: int) -> None:
    """Train under Fabric (``ddp`` on CPU with ``devices`` ranks) and save each rank's weights."""
    from etude.runtime import make_fabric, save_checkpoint, set_threads, teardown

    set_threads(1)
    fabric = make_fabric(accelerator="cpu", devices=devices, strategy="ddp")
    try:
        fabric.launch()
        model, x, y = make_problem()
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        model, optimizer = fabric.setup(model, optimizer)
        share = GLOBAL_BATCH // fabric.world_size
        rows = slice(fabric.global_rank * share, (fabric.global_rank + 1) * share)
        for step in range(STEPS):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x[step, rows]), y[step, rows])
            fabric.backward(loss)
            optimizer.step()
        params = {k: v.detach().clone() for k, v in model.state_dict().items()}
        state = {"params": params, "world_size": fabric.world_size}
        save_checkpoint(out_dir / f"rank{fabric.global_rank}.pt", state)
        fabric.barrier()
    finally:
        teardown(fabric)
    _wait_for_children(fabric)


def _wait_for_children(fabric: object) -> None:
    """On the launching rank, exit non-zero if a re-launched rank did (e.g. 134, an abort)."""
    launcher = getattr(getattr(fabric, "strategy", None), "launcher", None)
    for child in getattr(launcher, "procs", []):  # Fabric does not wait for them itself
        code = child.wait(timeout=60)
        if code != 0:
            sys.exit(f"a child rank (pid {child.pid}) exited with status {code}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2)
