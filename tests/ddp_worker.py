"""Every domain's part of the shared 2-rank CPU DDP (gloo) launch (``ddp_support.shared_run``).

Run as ``python ddp_worker.py ROOT``; Fabric's ``ddp`` launcher re-runs this script for rank 1. Both ranks
run each helper's ``main(fabric, ROOT/<domain>)`` in turn on the same process group, with a barrier between.
"""

from __future__ import annotations

from pathlib import Path

from ddp_support import HELPERS, helper, on_two_ranks


def main(fabric, root: Path) -> None:
    for domain in HELPERS:
        helper(domain).main(fabric, root / domain)
        fabric.barrier()
        if fabric.global_rank == 0:
            print(f"ddp_worker: {domain} done", flush=True)


if __name__ == "__main__":
    on_two_ranks(main)
