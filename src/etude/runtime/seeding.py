"""Seeding of every random number generator a run touches, and the CPU thread count.

A run is reproducible when ``seed_everything`` is called once, before any model or data
is built, and every later draw that should be resumable goes through the returned
``torch.Generator`` (its state can be saved with ``generator.get_state()``).
"""

from __future__ import annotations

import random

import numpy as np
import torch

from etude.validation import check_int

__all__ = ["MAX_SEED", "GENERATOR_SEED_BITS", "generator_seed", "seed_everything", "set_threads"]

MAX_SEED = 2**32 - 1
"""Largest accepted seed: NumPy's legacy global generator takes seeds in ``[0, 2**32)``."""


GENERATOR_SEED_BITS = 63
"""Derived seeds lie in ``[0, 2**63)``: ``torch.Generator.manual_seed`` takes ``[-2**63, 2**64)``, NumPy's
``default_rng`` and Python's ``random`` any non-negative int, so one range serves all three."""


def generator_seed(value: int) -> int:
    """A seed derived from an int expression (``seed * 1_000_003 + k``), reduced into ``[0, 2**63)``.

    The one seed derivation of etude: studies multiply and offset the run's seed (any value in
    ``[0, 2**32)``) to give each part its own stream, which can exceed what ``manual_seed`` accepts
    ("Overflow when unpacking long long"). ``value mod 2**63`` leaves every value already in range
    unchanged (the same draws as before) and maps every other int into it.

    :raises BadInputError: when ``value`` is not an int.
    """
    return check_int("derived seed", value) % 2**GENERATOR_SEED_BITS


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    :param seed: a non-negative int below ``2**32``.
    :returns: a fresh CPU ``torch.Generator`` seeded with ``seed``, independent of the
        global torch generator, for draws whose state must be checkpointed.
    :raises BadInputError: when ``seed`` is not an int in ``[0, 2**32)``.
    """
    seed = check_int("seed", seed, 0, MAX_SEED)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device when CUDA is present
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def set_threads(n: int | None) -> None:
    """Set torch's intra-op CPU thread count to ``n``; ``None`` leaves torch's default.

    :param n: a positive int, or ``None``.
    :raises BadInputError: when ``n`` is neither ``None`` nor a positive int.
    """
    if n is None:
        return
    check_int("threads", n, 1)
    torch.set_num_threads(n)
