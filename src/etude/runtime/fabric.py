"""A validated front door to ``lightning_fabric.Fabric`` and a clean shutdown.

With lightning-fabric 2.6.6 and torch 2.13, a CPU ``strategy="ddp"`` run (gloo backend)
aborts at interpreter exit (status 134) unless the process group is destroyed first, so
every script that calls ``make_fabric`` should end with ``teardown(fabric)``, ideally in
a ``finally`` block.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist
from lightning_fabric import Fabric
from lightning_fabric.accelerators import ACCELERATOR_REGISTRY
from lightning_fabric.loggers import Logger
from lightning_fabric.strategies import STRATEGY_REGISTRY

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = ["PRECISIONS", "check_fabric_args", "make_fabric", "teardown"]

PRECISIONS = ("32-true", "64-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
"""Precision strings accepted by ``make_fabric`` (Fabric's own spelling)."""


def _one_line(error: BaseException) -> str:
    """First non-empty line of an exception message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _check_choice(name: str, value: Any, allowed: list[str]) -> None:
    """Raise ``BadInputError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise BadInputError(f"{name} must be one of {sorted(allowed)}, got {value!r}")


def check_fabric_args(accelerator: str, devices: int | str, strategy: str, precision: str, num_nodes: int) -> None:
    """Raise ``BadInputError`` (naming the argument, the allowed values and the value) for a bad setting."""
    accelerators = ["auto", "gpu", *ACCELERATOR_REGISTRY.available_accelerators()]
    _check_choice("accelerator", accelerator, accelerators)
    _check_choice("strategy", strategy, ["auto", *STRATEGY_REGISTRY.available_strategies()])
    _check_choice("precision", precision, list(PRECISIONS))
    if isinstance(devices, bool) or not isinstance(devices, (int, str)):
        raise BadInputError(f"devices must be an int or a str, got {devices!r}")
    if isinstance(devices, int) and devices < 1 and devices != -1:
        raise BadInputError(f"devices must be a positive int, -1 (all) or 'auto', got {devices!r}")
    if isinstance(devices, str) and not devices.strip():
        raise BadInputError("devices must not be an empty string; use 'auto' or a device count")
    check_int("num_nodes", num_nodes, 1)


def make_fabric(
    accelerator: str = "auto",
    devices: int | str = 1,
    strategy: str = "auto",
    precision: str = "32-true",
    num_nodes: int = 1,
    loggers: Logger | list[Logger] | None = None,
) -> Fabric:
    """Build a ``Fabric`` after checking each argument; ``"auto"`` picks CPU when no GPU exists.

    The processes are not launched: call ``fabric.launch()`` (which, for ``strategy="ddp"``,
    re-runs the current script once per extra device) and finish with ``teardown(fabric)``.

    :param accelerator: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"gpu"``, ``"mps"`` or ``"tpu"``.
    :param devices: a positive int, ``-1`` (all), ``"auto"``, or a Fabric device string
        such as ``"0,1"``.
    :param strategy: ``"auto"`` or a registered Fabric strategy such as ``"ddp"``.
    :param precision: one of ``PRECISIONS``.
    :param num_nodes: a positive int.
    :param loggers: Fabric loggers, e.g. from ``make_loggers``.
    :raises BadInputError: for an unknown value, or a setting this machine cannot run.
    """
    check_fabric_args(accelerator, devices, strategy, precision, num_nodes)
    given = [] if loggers is None else loggers if isinstance(loggers, list) else [loggers]
    if not all(isinstance(logger, Logger) for logger in given):
        raise BadInputError("loggers must be a lightning_fabric Logger, a list of them, or None")
    try:
        return Fabric(
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
            precision=precision,  # type: ignore[arg-type]
            num_nodes=num_nodes,
            loggers=loggers,
        )
    except (ValueError, RuntimeError) as error:
        raise BadInputError(
            f"cannot build Fabric(accelerator={accelerator!r}, devices={devices!r}, "
            f"strategy={strategy!r}, precision={precision!r}): {_one_line(error)}"
        ) from error


def teardown(fabric: Fabric | None = None, status: str = "success") -> None:
    """Finalize ``fabric``'s loggers (flushing CSV rows) and destroy the process group.

    Safe to call more than once and in single-process runs. It does not synchronize the
    ranks: call ``fabric.barrier()`` first if other ranks must finish something.

    :param fabric: the run's ``Fabric``, or ``None`` to only destroy the process group.
    :param status: passed to each logger's ``finalize`` (``"success"``, ``"failed"``, ...).
    """
    if fabric is not None:
        for logger in fabric.loggers:
            logger.finalize(status)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
