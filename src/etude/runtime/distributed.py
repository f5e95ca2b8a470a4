"""Data-parallel training settings, ranks and batch shards, shared by every study that trains a network.

A run on W processes draws the *global* batch indices from the same seeded generator on every
rank, and each rank trains on its contiguous slice (``shard``). The data order is therefore the
same for every world size, which is what lets a checkpoint written at one world size resume at
another, and what lets W processes end with the parameters of one process on the global batch
(DDP averages the ranks' gradients, so each rank's loss is scaled to make that average the
global-batch gradient). Only rank 0 writes results, checkpoints and figures (``is_rank_zero``).

A training loop adopts this in a few lines (as ``etude.music.training.fit`` does): ``fabric.setup``
the model and optimizer before loading a checkpoint with ``load_on_rank_zero``; draw the global
indices as before and train on ``shard(index, fabric)``; back-propagate the shard's *sum* of losses
times W over the global normaliser with ``fabric.backward``, clip with ``fabric.clip_gradients``;
record ``sum_over_ranks(shard_sum) / normaliser``; save only where ``is_rank_zero``. Random noise
(reparameterization, dropout masks) must be drawn for the global batch and sliced like the data
for the W-rank run to equal the one-process one. A study sets ``trains_with_fabric = True`` and
takes ``run(..., fabric=None)``.

Launch on one machine with Fabric's own launcher (``--strategy ddp --devices N``) or with
``torchrun --nproc-per-node N``; on several nodes with ``torchrun`` or ``fabric run`` (whose
settings arrive in ``LT_*`` variables: ``fabric_run_settings``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch.distributed as dist
from torch import Tensor

from etude.errors import BadInputError, CheckpointError

if TYPE_CHECKING:  # importing Lightning costs about 2 s: only when a run asks for it
    from lightning_fabric import Fabric

__all__ = [
    "Distributed",
    "fabric_run_settings",
    "is_rank_zero",
    "load_on_rank_zero",
    "precision_of",
    "rank",
    "shard",
    "sum_over_ranks",
    "wait_for_ranks",
    "world_size",
]


@dataclass(frozen=True)
class Distributed:
    """How a run spreads over devices and processes: Fabric's accelerator, devices, strategy, precision, nodes."""

    devices: int = 1
    """Processes (one per device) on each node."""
    strategy: str = "auto"
    """'auto' (one device) or a Fabric strategy such as 'ddp'."""
    precision: str = "32-true"
    """A Fabric precision, e.g. '32-true' or 'bf16-mixed'."""
    num_nodes: int = 1
    """Machines taking part (launch them with torchrun or ``fabric run``)."""
    accelerator: str = "auto"
    """'auto' (a GPU when there is one), 'cpu', 'cuda', 'gpu' or 'mps'."""

    def __post_init__(self) -> None:
        from etude.runtime.fabric import check_fabric_args

        check_fabric_args(self.accelerator, self.devices, self.strategy, self.precision, self.num_nodes)
        if self.devices * self.num_nodes > 1 and self.strategy == "auto":
            raise BadInputError(
                f"devices={self.devices} x num_nodes={self.num_nodes} needs a strategy such as "
                "'ddp', got strategy='auto'"
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def make_fabric(self) -> Fabric:
        """An unlaunched ``Fabric`` with these settings (call ``launch()``, end with ``teardown``)."""
        from etude.runtime.fabric import make_fabric

        return make_fabric(self.accelerator, self.devices, self.strategy, self.precision, self.num_nodes)

    def launch(self) -> Fabric:
        """``make_fabric()`` launched: its launcher starts the other local ranks (``fabric run`` already did)."""
        fabric = self.make_fabric()
        if os.environ.get("LT_CLI_USED") != "1":  # Fabric refuses a second launch under `fabric run`
            fabric.launch()
        return fabric


_FABRIC_RUN_ENV = {
    "accelerator": "LT_ACCELERATOR",
    "strategy": "LT_STRATEGY",
    "devices": "LT_DEVICES",
    "num_nodes": "LT_NUM_NODES",
    "precision": "LT_PRECISION",
}


def fabric_run_settings() -> dict[str, Any]:
    """The ``Distributed`` fields that ``fabric run`` passed to this process (its ``LT_*`` variables), else {}."""
    if os.environ.get("LT_CLI_USED") != "1":
        return {}
    found: dict[str, Any] = {k: os.environ[v] for k, v in _FABRIC_RUN_ENV.items() if os.environ.get(v)}
    for key in ("devices", "num_nodes"):
        if key in found:
            try:
                found[key] = int(found[key])
            except ValueError:
                raise BadInputError(
                    f"fabric run passed {_FABRIC_RUN_ENV[key]}={found[key]!r}; "
                    f"etude expects a count of {key.replace('_', ' ')}"
                ) from None
    return found


def rank(fabric: Fabric | None = None) -> int:
    """This process's global rank: the fabric's, else the process group's, else torchrun's ``RANK``, else 0."""
    if fabric is not None:
        return fabric.global_rank
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))


def world_size(fabric: Fabric | None = None) -> int:
    """Processes in the run: the fabric's, else the process group's, else torchrun's ``WORLD_SIZE``, else 1."""
    if fabric is not None:
        return fabric.world_size
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1))


def is_rank_zero(fabric: Fabric | None = None) -> bool:
    """True in the one process that writes results, checkpoints, figures and logs."""
    return rank(fabric) == 0


def precision_of(fabric: Fabric | None) -> str:
    """The Fabric precision a run trains at: ``fabric``'s, or '32-true' without one."""
    return "32-true" if fabric is None else str(fabric.strategy.precision.precision)


def shard(global_index: Tensor, fabric: Fabric | None = None, *, uneven: bool = False) -> Tensor:
    """This rank's contiguous equal slice ``global_index[r*B/W : (r+1)*B/W]`` of a global batch of B indices.

    With ``uneven`` any B is split (``tensor_split``: the first B mod W ranks take one more, a rank
    may take none), for a loop whose batches are not all of one size (an epoch's last, partial
    batch); its loss must then be the shard's *sum* times W over B, which is exact for any split.

    :raises BadInputError: when B is not divisible by the world size W (and not ``uneven``).
    """
    size, r = world_size(fabric), rank(fabric)
    if uneven:
        return global_index.tensor_split(size)[r]
    if global_index.shape[0] % size:
        raise BadInputError(
            f"the global batch size {global_index.shape[0]} must be divisible by the world size "
            f"{size}; choose a batch_size that is a multiple of devices x num_nodes"
        )
    per = global_index.shape[0] // size
    return global_index[r * per : (r + 1) * per]


def wait_for_ranks(fabric: Fabric | None, timeout: float = 600.0) -> None:
    """On the launching process, wait for the ranks Fabric's launcher started; exit non-zero if one failed.

    Fabric does not wait for the processes it launched itself (torchrun does), so without this the
    launcher could exit (and its shell return) while the other ranks still run.
    """
    launcher = getattr(getattr(fabric, "strategy", None), "launcher", None)
    for child in getattr(launcher, "procs", []):
        code = child.wait(timeout=timeout)
        if code != 0:
            sys.exit(f"etude: error: rank process {child.pid} exited with status {code}")


def load_on_rank_zero(
    path: str | os.PathLike[str],
    fabric: Fabric | None = None,
    *,
    expect: Mapping[str, Any] | None = None,
    like: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (``load_checkpoint``) read by rank 0 and broadcast to every rank; None if missing.

    The other ranks need no shared file system, and every rank resumes from the same state.

    :raises CheckpointError: on every rank, when rank 0 finds the file damaged or from another run.
    """
    from etude.runtime.checkpoint import load_checkpoint

    file = Path(path)
    state, error = None, None
    if is_rank_zero(fabric) and file.exists():
        try:
            state = load_checkpoint(file, expect=expect, like=like)
        except CheckpointError as exc:  # told to the other ranks, which would otherwise wait forever
            error = str(exc)
    if fabric is not None and fabric.world_size > 1:
        state, error = fabric.broadcast((state, error), src=0)
    if error is not None:
        raise CheckpointError(error)
    return state


def sum_over_ranks(value: Tensor, fabric: Fabric | None) -> Tensor:
    """``value`` summed over every rank (``value`` itself without a fabric or with one process)."""
    if fabric is None or fabric.world_size == 1:
        return value
    # Fabric hints all_reduce with the union of every collection type; a tensor in gives a tensor out
    return fabric.all_reduce(value.detach().clone(), reduce_op="sum")  # type: ignore[return-value]
