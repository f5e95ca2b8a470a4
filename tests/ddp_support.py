"""Launching 2-rank CPU DDP (gloo) test runs, shared by every test that checks a study's training under DDP.

Every domain's 2-rank training runs in ONE launch of two interpreters sharing one gloo process group
(``shared_run()``, once per test session): ``HELPERS`` names each domain's helper script, which holds
``prepare(work)`` (inputs and one-process checkpoints, written before the launch), ``main(fabric, work)``
(its part of the launch, run by ``ddp_worker.py`` on both ranks), ``oracle(work)`` (the one-process runs,
cached) and ``CASES`` / ``check(work, case)`` (the equality of the ranks with one process, asserted by the
one parametrized test in ``runtime/test_ddp.py``). The domains' test files check the rest
(resume across world sizes, dropout masks, the CLI on 2 ranks) on the same launch's files.

``run_two_ranks(command, cwd)`` starts ``command`` (a script that launches its second rank through
Fabric's ``ddp`` launcher) in its own POSIX session with a free ``MASTER_PORT``, and kills the whole
session on timeout. ``load_helper(path)`` imports a helper script by path (the tests folder is not a
package); ``run_helper`` runs a helper script so and checks that it trained on gloo. In a helper script, ``on_two_ranks(main)`` is the whole launch (2 CPU ranks, one thread,
teardown, rank 0 waiting for rank 1), ``save_rank`` saves a rank's results, and ``dying`` / ``dying_attribute``
stand in for a run killed after N steps (they raise ``Stop``). In the tests, ``max_difference`` and
``assert_equal_states`` compare parameters, and ``reproduced_on_two_ranks_and_one`` returns a study's result
from the shared launch's 2-rank CLI run (``CLI_CASES``) and from one process, after checking that rank 0 alone
reported and wrote. Import as ``from tests.ddp_support import ...``: ``tests`` is a package, pytest puts the
repository root on ``sys.path``, and ``run_two_ranks`` hands that ``sys.path`` to the helper scripts as
``PYTHONPATH``.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import os
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

TIMEOUT_S = 180
SHARED_TIMEOUT_S = 600
TESTS = Path(__file__).parent
WORKER = TESTS / "ddp_worker.py"
HELPERS = {
    "loop": "runtime/ddp_train.py",
    "metavae": "meta/ddp_fit.py",
    "pwcca": "similarity/ddp_train.py",
    "bruno": "exchangeable/ddp_train.py",
    "transformer_ae": "music/ddp_fit.py",
    "amae": "audio/ddp_fit.py",
}
"""Each domain's helper script under tests/, by the study (or runtime part) it trains."""
CPU_DDP = ("--strategy", "ddp", "--devices", "2", "--accelerator", "cpu")
CLI_CASES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "metavae": (["reproduce", "metavae", "--preset", "smoke", "--set", "mog_steps=4", "--set", "digit_steps=4"], CPU_DDP),
    "pwcca": (["reproduce", "pwcca", "--preset", "smoke"], CPU_DDP),
    "bruno": (["reproduce", "bruno", "--preset", "smoke"], CPU_DDP),
    "transformer_ae": (["reproduce", "transformer_ae", "--preset", "smoke", "--set", "steps=2"], CPU_DDP[:4]),
    "amae": (["reproduce", "amae", "--preset", "smoke", "--set", "steps=2", "--set", "top_steps=2",
              "--set", "prior_steps=2"], CPU_DDP),
}
"""The `etude` CLI runs each study's test compares on 2 ranks and in one process: (args, the 2-rank flags).
In the shared launch they run on its process group (``ddp_worker.py``), each rank's writes audited."""
SKIP_REASON = "uses POSIX sessions and the gloo backend"
skip_on_windows = pytest.mark.skipif(sys.platform == "win32", reason=SKIP_REASON)

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


@functools.cache
def helper(domain: str) -> ModuleType:
    """The helper script of ``domain`` (``HELPERS``), imported once per session (its oracles are cached)."""
    return load_helper(TESTS / HELPERS[domain], f"etude_ddp_{domain}")


@functools.cache
def shared_run() -> Path:
    """The folder of the one 2-rank launch that trains every domain (``<root>/<domain>/``), run on first use.

    Each helper's ``prepare`` writes its inputs first; then ``ddp_worker.py`` runs every helper's ``main`` on
    2 CPU ranks in one process group, so that the interpreters, Lightning's import and gloo's set-up are paid once.
    Under pytest-xdist the workers share it: the first to ask launches under a file lock, the others wait and
    read the same folder (``shared_root``; the controller removes it at the end, ``remove_shared``).
    """
    torch.set_num_threads(1)  # in every worker: the one-process oracles that follow are compared to 1e-6
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        root = Path(tempfile.mkdtemp(prefix="etude_ddp_"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        return _launch(root)
    import fcntl

    root = shared_root(run)
    with open(root.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "done").exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            _launch(root)
            (root / "done").touch()
    return root


def shared_root(run: str) -> Path:
    """Where the xdist workers of test run ``run`` share the launch."""
    return Path(tempfile.gettempdir()) / f"etude_ddp_{run}"


def remove_shared(run: str) -> None:
    """Remove the shared launch of test run ``run`` and its lock."""
    root = shared_root(run)
    shutil.rmtree(root, ignore_errors=True)
    root.with_suffix(".lock").unlink(missing_ok=True)


def _launch(root: Path) -> Path:
    for domain in HELPERS:
        (root / domain).mkdir()
        helper(domain).prepare(root / domain)
    (root / "cli").mkdir()
    _prepare_cli(root / "cli")
    run_helper(WORKER, root, timeout=SHARED_TIMEOUT_S)
    return root


def cli_cache(root: Path, study: str) -> Path:
    """The ``ETUDE_CACHE`` of a study's CLI runs in the shared launch (and of the one-process run it is compared with)."""
    return root / "cli" / f"cache_{study}"


def _prepare_cli(root: Path) -> None:
    """What the CLI cases need before the launch: the Bach pieces parsed, amae's audio rendered."""
    from etude.music import load_corpus

    load_corpus("bach", limit=6, cache=root / "cache_transformer_ae", show_progress=False)  # the smoke preset's
    if amae_renders():  # the one-process run renders the pieces into the cache that the ranks then read
        one_process("amae", root.parent, root / "one")


def amae_renders() -> bool:
    """Whether fluidsynth and a GM soundfont can render the Bach pieces amae's study trains on."""
    from etude.audio import fluidsynth_available

    return fluidsynth_available()


def one_process(study: str, root: Path, out: Path) -> dict:
    """``etude <CLI_CASES[study]> --out out`` in this process (its cache that of the shared launch); the result."""
    from etude.cli import main

    before = os.environ.get("ETUDE_CACHE")
    os.environ["ETUDE_CACHE"] = str(cli_cache(root, study))
    try:
        if not (out / study / "result.json").exists():
            assert main([*CLI_CASES[study][0], "--out", str(out)]) == 0
    finally:
        os.environ.pop("ETUDE_CACHE") if before is None else os.environ.update(ETUDE_CACHE=before)
    return json.loads((out / study / "result.json").read_text())


def reproduced_on_two_ranks_and_one(study: str, files: set[str]) -> tuple[dict, dict]:
    """The study's result.json from the shared launch's 2-rank CLI run and from one process, once the 2-rank run
    passed with rank 0 alone reporting and writing (at least ``files``), both finished ok, and the 2-rank run
    trained through a CPU 32-true Fabric."""
    root = shared_run()
    ranks = [json.loads((root / "cli" / f"{study}_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["code"] for r in ranks] == [0, 0], ranks[0]["stdout"] + ranks[1]["stdout"]
    assert ranks[0]["stdout"].count(f"{study} [") == 1 and ranks[1]["stdout"].count(f"{study} [") == 0
    assert ranks[1]["written"] == [], f"rank 1 wrote {ranks[1]['written']}"
    assert files <= set(ranks[0]["written"])  # the audit sees writes
    two = json.loads((root / "cli" / "ddp" / study / "result.json").read_text())
    one = one_process(study, root, root / "cli" / f"one_{study}")  # one folder per study: xdist workers run them at once
    assert two["status"] == one["status"] == "ok", two["error"]
    assert two["settings"]["fabric"] == {"accelerator": "cpu", "precision": "32-true"}
    return two, one


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


def run_helper(helper: Path, work: Path, *args: str, timeout: float = TIMEOUT_S) -> str:
    """Run the helper script ``helper work *args`` on 2 ranks; its output, failing unless it passed on gloo."""
    done = run_two_ranks([sys.executable, str(helper), str(work), *args], cwd=work, timeout=timeout)
    assert done.returncode == 0, f"DDP run exited with {done.returncode}:\n{done.stdout}"
    assert "distributed_backend=gloo" in done.stdout
    return done.stdout


def on_two_ranks(main: Callable[[Any, Path], None]) -> None:
    """A helper script's entry: ``main(fabric, work)`` on each of 2 CPU DDP ranks (gloo), ``work`` from argv.

    One torch thread; Fabric's ``ddp`` launcher re-runs the script for rank 1; after ``main`` a barrier,
    then teardown (also on error), and rank 0 waits for rank 1 (exiting non-zero if it failed).
    """
    from etude.runtime import Distributed, set_threads, teardown, wait_for_ranks

    work = Path(sys.argv[1])
    set_threads(1)
    fabric = Distributed(accelerator="cpu", devices=2, strategy="ddp").launch()
    try:
        main(fabric, work)
        fabric.barrier()
    finally:
        teardown(fabric)
    wait_for_ranks(fabric)


def save_rank(fabric: Any, work: Path, stem: str, state: dict) -> None:
    """Save this rank's ``state`` to ``work/<stem>_rank<r>.pt``."""
    from etude.runtime import save_checkpoint

    save_checkpoint(work / f"{stem}_rank{fabric.global_rank}.pt", state)


class Stop(Exception):
    """Raised by a ``dying`` function in place of a killed run."""


def dying(function: Callable, stop: int | None) -> Callable:
    """``function``, but raising ``Stop`` from its call ``stop + 1`` on (``function`` itself when ``stop`` is None)."""
    if stop is None:
        return function
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls > stop:
            raise Stop
        return function(*args, **kwargs)

    return wrapper


@contextmanager
def dying_attribute(owner: object, name: str, stop: int | None) -> Iterator[None]:
    """While inside, ``owner.<name>`` is ``dying(owner.<name>, stop)``; restored on the way out."""
    real = getattr(owner, name)
    setattr(owner, name, dying(real, stop))
    try:
        yield
    finally:
        setattr(owner, name, real)


def max_difference(found: dict, expected: dict) -> float:
    """The largest absolute difference (in float64) of ``found`` from ``expected``, over ``expected``'s keys."""
    return max((found[k].double() - v.double()).abs().max().item() for k, v in expected.items())


def assert_equal_states(found: dict, expected: dict) -> None:
    """``found`` holds each tensor of ``expected`` exactly (e.g. the two ranks' parameters: DDP keeps them in step)."""
    for name, value in expected.items():
        assert torch.equal(found[name], value), name
