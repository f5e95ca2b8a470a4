"""Two-rank CPU DDP (gloo) under make_fabric equals one process on the full global batch.

The oracle is a plain torch loop (no Fabric) over the same seeded model and data: with the
loss a mean over equal halves, DDP's averaged gradient equals the full-batch gradient, so
after every SGD step both ranks must hold the single-process parameters.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from etude.runtime import load_checkpoint

HELPER = Path(__file__).with_name("ddp_train.py")
TIMEOUT_S = 120


def _helper() -> ModuleType:
    """Import ``ddp_train.py`` by path (the tests folder is not a package)."""
    spec = importlib.util.spec_from_file_location("etude_ddp_train_helper", HELPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_ddp(out_dir: Path) -> str:
    """Run the helper with 2 ranks; return its output, failing the test on error or timeout."""
    drop = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("LT_")}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), OMP_NUM_THREADS="1")
    process = subprocess.Popen(
        [sys.executable, str(HELPER), str(out_dir), "2"],
        cwd=out_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # rank 1 joins this session, so one killpg stops both
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"DDP run timed out after {TIMEOUT_S} s:\n{output}")
    assert process.returncode == 0, f"DDP run exited with {process.returncode}:\n{output}"
    return output


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


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX sessions and the gloo backend")
def test_two_rank_ddp_matches_single_process(tmp_path: Path) -> None:
    output = _run_ddp(tmp_path)
    ranks = [load_checkpoint(tmp_path / f"rank{r}.pt", expect={"world_size": 2}) for r in (0, 1)]
    initial, expected = _single_process(_helper())
    assert "distributed_backend=gloo" in output
    for name, value in expected.items():
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name
        assert torch.allclose(ranks[0]["params"][name], value, rtol=0, atol=1e-6), name
        assert (value - initial[name]).abs().max() > 1e-2, f"{name} barely moved"
