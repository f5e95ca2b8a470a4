"""tqdm progress bars that stay quiet where they would only add noise.

A bar is hidden when ``ETUDE_PROGRESS`` is ``0`` (or ``false``/``no``/``off``), when this
process is not rank 0 (its initialized process group, or ``RANK`` or ``LOCAL_RANK`` set to
something other than ``0``), or when the caller passes ``disable=True``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

import torch.distributed as dist
from tqdm import tqdm

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = ["progress", "progress_allowed"]

_OFF = ("0", "false", "no", "off")


def progress_allowed() -> bool:
    """False when ``ETUDE_PROGRESS`` turns bars off or this process is not global rank 0."""
    if os.environ.get("ETUDE_PROGRESS", "1").strip().lower() in _OFF:
        return False
    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return False  # a rank Fabric or torchrun started, whatever the environment says (e.g. `fabric run` nodes)
    return all(os.environ.get(var, "0").strip() in ("", "0") for var in ("RANK", "LOCAL_RANK"))


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    disable: bool | None = None,
) -> tqdm:
    """A tqdm bar on ``sys.stderr`` over ``iterable`` (or a manual one, updated with ``.update``).

    :param iterable: what to iterate over, or ``None`` for a manual bar.
    :param total: number of expected items; defaults to ``len(iterable)`` when it has one.
    :param desc: the bar's label.
    :param disable: ``True`` hides the bar; ``False`` shows it even when stderr is not a
        terminal; ``None`` lets tqdm hide it on a non-terminal. The environment (see the
        module docstring) can always hide it.
    :raises BadInputError: when ``total`` is negative or ``disable`` is not a bool or ``None``.
    """
    if total is not None:
        check_int("total", total, 0)
    if disable is not None and not isinstance(disable, bool):
        raise BadInputError(f"disable must be True, False or None, got {disable!r}")
    hidden: bool | None = True if disable or not progress_allowed() else disable
    return tqdm(iterable, total=total, desc=desc, disable=hidden, file=sys.stderr, dynamic_ncols=True)
