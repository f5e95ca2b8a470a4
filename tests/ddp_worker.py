"""Every domain's part of the shared 2-rank CPU DDP (gloo) launch (``ddp_support.shared_run``).

Run as ``python ddp_worker.py ROOT``; Fabric's ``ddp`` launcher re-runs this script for rank 1. Both ranks
run each helper's ``main(fabric, ROOT/<domain>)`` in turn on the same process group, with a barrier between,
then the `etude` CLI of each of ``CLI_CASES`` on that same group (the runner is handed the launched fabric
instead of launching its own): each rank's exit code, output and the names of the files it wrote under
``ROOT/cli/ddp`` (an audit hook) go to ``ROOT/cli/<study>_rank<r>.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

from tests.ddp_support import CLI_CASES, HELPERS, amae_renders, cli_cache, helper, on_two_ranks

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.truncate"}
audit: dict = {"out": None, "writes": []}


def _hook(event: str, args: tuple) -> None:
    if audit["out"] is None:
        return
    if event == "open" and isinstance(args[2], int) and args[2] & WRITE_FLAGS:
        paths = args[:1]
    elif event in CHANGES:
        paths = args[:2] if event in ("os.rename", "os.symlink", "os.link") else args[:1]
    else:
        return
    for path in paths:
        try:
            text = os.path.realpath(os.fsdecode(path))
        except TypeError:  # a file descriptor
            continue
        if text.startswith(audit["out"] + os.sep):
            audit["writes"].append(Path(text).name)


def run_cli(fabric, root: Path) -> None:
    from etude.cli import main
    from etude.runtime import Distributed
    from etude.studies import runner, task

    task._FABRICS[Distributed(accelerator="cpu", devices=2, strategy="ddp")] = fabric  # already launched
    runner.close_fabrics = lambda: None  # the group serves every run; on_two_ranks tears it down
    sys.addaudithook(_hook)
    out = root / "cli" / "ddp"
    for study, (args, ddp) in CLI_CASES.items():
        if study == "amae" and not amae_renders():
            continue
        os.environ["ETUDE_CACHE"] = str(cli_cache(root, study))
        audit.update(out=os.path.realpath(out), writes=[])
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            code = main([*args, *ddp, "--out", str(out)])
        audit["out"] = None
        fabric.barrier()
        report = {"code": code, "stdout": text.getvalue(), "written": sorted(set(audit["writes"]))}
        (root / "cli" / f"{study}_rank{fabric.global_rank}.json").write_text(json.dumps(report))


def main(fabric, root: Path) -> None:
    for domain in HELPERS:
        helper(domain).main(fabric, root / domain)
        fabric.barrier()
        if fabric.global_rank == 0:
            print(f"ddp_worker: {domain} done", flush=True)
    run_cli(fabric, root)


if __name__ == "__main__":
    on_two_ranks(main)
