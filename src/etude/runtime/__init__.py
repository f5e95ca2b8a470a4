"""Run machinery shared by every study: seeding, checkpoints, Fabric and data-parallel ranks, loggers,
progress bars, figures, and the one training loop (``train_loop``).

Fabric and the loggers import Lightning (about 2 s), so they load on first use; the figure
helpers import matplotlib only when called.
"""

from importlib import import_module
from typing import Any

from etude.runtime.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from etude.runtime.devices import DEVICES, resolve_device
from etude.runtime.distributed import (
    Distributed,
    fabric_run_settings,
    is_rank_zero,
    load_on_rank_zero,
    precision_of,
    rank,
    shard,
    sum_over_ranks,
    wait_for_ranks,
    world_size,
)
from etude.runtime.figures import pyplot, save_figure
from etude.runtime.global_batch import Objective, batch_mean, batch_rows, batch_sum, from_rank_zero, global_batch
from etude.runtime.loop import GlobalRng, LoopResult, Saved, train_loop
from etude.runtime.optional import require
from etude.runtime.progress import progress, progress_allowed
from etude.runtime.seeding import MAX_SEED, seed_everything, set_threads

_LAZY = {
    "PRECISIONS": "etude.runtime.fabric",
    "check_fabric_args": "etude.runtime.fabric",
    "make_fabric": "etude.runtime.fabric",
    "teardown": "etude.runtime.fabric",
    "make_loggers": "etude.runtime.loggers",
    "tensorboard_available": "etude.runtime.loggers",
}

__all__ = [
    "DEVICES",
    "GlobalRng",
    "LoopResult",
    "Saved",
    "train_loop",
    "Objective",
    "batch_mean",
    "batch_rows",
    "batch_sum",
    "from_rank_zero",
    "global_batch",
    "require",
    "Distributed",
    "check_fabric_args",
    "fabric_run_settings",
    "is_rank_zero",
    "precision_of",
    "load_on_rank_zero",
    "rank",
    "shard",
    "sum_over_ranks",
    "wait_for_ranks",
    "world_size",
    "resolve_device",
    "MAX_SEED",
    "PRECISIONS",
    "latest_checkpoint",
    "load_checkpoint",
    "make_fabric",
    "make_loggers",
    "progress",
    "progress_allowed",
    "pyplot",
    "save_checkpoint",
    "save_figure",
    "seed_everything",
    "set_threads",
    "teardown",
    "tensorboard_available",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'etude.runtime' has no attribute {name!r}")
