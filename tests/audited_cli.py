"""Helper for the DDP CLI tests (``ddp_support.audited_two_ranks``): the `etude` CLI with every write under
``$AUDIT_OUT`` recorded per rank.

Run as ``python audited_cli.py reproduce ...``; Fabric's launcher re-runs this script for rank 1
(with ``LOCAL_RANK=1``). A Python audit hook records each file opened for writing and each
mkdir/rename/remove under ``$AUDIT_OUT``; at exit the list goes to ``$AUDIT_LOG/rank<r>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

RANK = int(os.environ.get("LOCAL_RANK", "0"))  # Fabric's launcher sets it for the ranks it starts
OUT = os.path.realpath(os.environ["AUDIT_OUT"])
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
CHANGES = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.truncate"}
writes: list[tuple[str, str]] = []


def _under_out(path: object) -> str | None:
    try:
        text = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
    except TypeError:  # a file descriptor
        return None
    return text if text == OUT or text.startswith(OUT + os.sep) else None


def _hook(event: str, args: tuple) -> None:
    if event == "open" and isinstance(args[2], int) and args[2] & WRITE_FLAGS:
        paths = args[:1]
    elif event in CHANGES:
        paths = args[:2] if event in ("os.rename", "os.symlink", "os.link") else args[:1]
    else:
        return
    for path in paths:
        found = _under_out(path)
        if found is not None:
            writes.append((event, found))


if __name__ == "__main__":
    sys.addaudithook(_hook)
    from etude.cli import main

    code = main(sys.argv[1:])
    log = Path(os.environ["AUDIT_LOG"])
    log.mkdir(parents=True, exist_ok=True)
    (log / f"rank{RANK}.json").write_text(json.dumps(writes))
    sys.exit(code)
