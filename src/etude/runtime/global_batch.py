"""Objectives and statistics of the global batch when each of W data-parallel ranks holds one shard of it.

DDP averages the ranks' gradients, so a loss that is a mean over examples is exact when each rank
takes the mean over its equal shard (``etude.runtime.distributed`` says how the batch is drawn and
sharded). Two things need more:

* the loss must run through the module that DDP wraps: ``Objective(model, loss_fn)`` is a module
  whose ``forward`` is ``loss_fn`` (a function using ``model``); Fabric sets it up, applies DDP's
  gradient hooks and the precision's autocast to its forward, and ``model`` keeps its own state dict;
* a statistic of the whole batch (the AMAE's mean code use, a VQ codebook's EMA counts, the rows a
  dead code restarts on) must see every rank's shard: inside ``with global_batch(fabric):``,
  ``batch_mean``, ``batch_sum``, ``batch_rows`` and ``from_rank_zero`` reduce over the ranks;
  outside it (no fabric, or one process) they are the plain one-process operations, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from etude.runtime.distributed import sum_over_ranks

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["Objective", "batch_mean", "batch_rows", "batch_sum", "from_rank_zero", "global_batch"]

_FABRIC: ContextVar[Fabric | None] = ContextVar("etude_global_batch", default=None)


class Objective(nn.Module):
    """``loss_fn(*args, **kwargs)`` as the ``forward`` of a module holding ``model`` (for ``fabric.setup``)."""

    def __init__(self, model: nn.Module, loss_fn: Callable[..., Tensor]) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.loss_fn(*args, **kwargs)


@contextmanager
def global_batch(fabric: Fabric | None) -> Iterator[None]:
    """Within this block, the ``batch_*`` statistics reduce over ``fabric``'s ranks (each holding one equal shard)."""
    token = _FABRIC.set(fabric if fabric is not None and fabric.world_size > 1 else None)
    try:
        yield
    finally:
        _FABRIC.reset(token)


def batch_mean(x: Tensor, dim: int | tuple[int, ...]) -> Tensor:
    """Mean of ``x`` over ``dim`` (dim 0 the shard's examples) across the global batch: sum_r S_r / (W n).

    Its gradient reaching this rank's ``x`` is W times this rank's share (1/n instead of 1/(W n)), so
    that DDP's average of the ranks' gradients is the gradient of the global-batch mean.
    """
    fabric = _FABRIC.get()
    if fabric is None:
        return x.mean(dim)
    local = x.sum(dim)
    count = x.numel() // max(local.numel(), 1)
    total = sum_over_ranks(local, fabric)
    return (total + fabric.world_size * (local - local.detach())) / (count * fabric.world_size)


def batch_sum(x: Tensor) -> Tensor:
    """A statistic summed over this rank's shard (counts, sums; no gradient) summed over every rank."""
    return sum_over_ranks(x, _FABRIC.get())


def batch_rows(x: Tensor) -> Tensor:
    """Rows [n, ...] of this rank's shard gathered from every rank in rank order: [W n, ...] (no gradient)."""
    fabric = _FABRIC.get()
    if fabric is None:
        return x
    return cast(Tensor, fabric.all_gather(x.detach().contiguous())).reshape(-1, *x.shape[1:])


@torch.no_grad()
def from_rank_zero(*tensors: Tensor) -> None:
    """Overwrite ``tensors`` in place with rank 0's values (a random decision taken once for every rank)."""
    fabric = _FABRIC.get()
    if fabric is None:
        return
    for tensor, value in zip(tensors, fabric.broadcast([t.detach() for t in tensors], src=0)):
        tensor.copy_(value.to(tensor.device))
