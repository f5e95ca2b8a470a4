"""Launching 2-rank CPU DDP (gloo) test runs, shared by every test that checks a study's training under DDP.

``run_two_ranks(command, cwd)`` starts ``command`` (a script that launches its second rank through
Fabric's ``ddp`` launcher) in its own POSIX session with a free ``MASTER_PORT``, and kills the whole
session on timeout. ``load_helper(path)`` imports a helper script by path (the tests folder is not a
package). ``audited_two_ranks(args, work)`` runs the `etude` CLI on 2 ranks through ``audited_cli.py`` and
returns the names of the files each rank wrote. Import as ``from ddp_support import ...``: pytest puts
``tests/`` on ``sys.path`` for its conftest.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

TIMEOUT_S = 180
SKIP_REASON = "uses POSIX sessions and the gloo backend"
skip_on_windows = pytest.mark.skipif(sys.platform == "win32", reason=SKIP_REASON)

AUDITED_CLI = Path(__file__).with_name("audited_cli.py")
_RANK_VARIABLES = {"RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_helper(path: Path, name: str | None = None) -> ModuleType:
    """Import the helper script at ``path`` as a module."""
    spec = importlib.util.spec_from_file_location(name or f"etude_test_helper_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_two_ranks(command: list[str], cwd: Path, extra_env: dict[str, str] | None = None,
                  timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``command`` (which launches its second rank through Fabric); kill the whole session on timeout."""
    env = {k: v for k, v in os.environ.items() if k not in _RANK_VARIABLES and not k.startswith("LT_")}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(sys.path), **(extra_env or {}))
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # rank 1 joins the session: one killpg stops both
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"DDP run timed out after {timeout} s:\n{output}")
    return subprocess.CompletedProcess(command, process.returncode, output)


def audited_two_ranks(args: list[str], work: Path, out: Path, extra_env: dict[str, str] | None = None
                      ) -> tuple[subprocess.CompletedProcess, dict[int, set[str]]]:
    """``etude <args> --out out`` (args with ``--strategy ddp --devices 2``) run on 2 ranks, with the names of
    the files each rank wrote, opened for writing or changed under ``out`` (``audited_cli.py``)."""
    logs = work / "audit"
    done = run_two_ranks([sys.executable, str(AUDITED_CLI), *args, "--out", str(out)], cwd=work,
                         extra_env={"AUDIT_OUT": str(out), "AUDIT_LOG": str(logs), **(extra_env or {})})
    written = {r: {Path(p).name for _, p in json.loads((logs / f"rank{r}.json").read_text())}
               for r in (0, 1) if (logs / f"rank{r}.json").exists()}
    return done, written
