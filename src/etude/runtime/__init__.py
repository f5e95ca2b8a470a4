"""Run machinery shared by every study: seeding, checkpoints, Fabric, loggers, progress bars."""

from etude.runtime.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from etude.runtime.fabric import PRECISIONS, make_fabric, teardown
from etude.runtime.loggers import make_loggers, tensorboard_available
from etude.runtime.progress import progress, progress_allowed
from etude.runtime.seeding import MAX_SEED, seed_everything, set_threads

__all__ = [
    "MAX_SEED",
    "PRECISIONS",
    "latest_checkpoint",
    "load_checkpoint",
    "make_fabric",
    "make_loggers",
    "progress",
    "progress_allowed",
    "save_checkpoint",
    "seed_everything",
    "set_threads",
    "teardown",
    "tensorboard_available",
]
