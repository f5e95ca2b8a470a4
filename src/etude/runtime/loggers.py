"""Fabric loggers for a run: always a CSV file, TensorBoard events when it is installed.

Both loggers write into the same folder, ``<log_dir>/<name>/version_<n>/``
(``metrics.csv`` and ``events.out.tfevents.*``), with ``n`` the first unused version.
"""

from __future__ import annotations

import importlib.util
import os

from lightning_fabric.loggers import CSVLogger, Logger, TensorBoardLogger

from etude.errors import BadInputError, MissingDependencyError

__all__ = ["make_loggers", "tensorboard_available"]


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package can be imported."""
    return importlib.util.find_spec("tensorboard") is not None


def make_loggers(log_dir: str | os.PathLike[str], name: str = "train", tensorboard: bool | None = None) -> list[Logger]:
    """A ``CSVLogger`` and, when wanted and installed, a ``TensorBoardLogger`` sharing one version.

    CSV rows are flushed every 100 steps and at ``teardown(fabric)`` (``logger.finalize``).

    :param log_dir: root folder of the logs.
    :param name: experiment name, the sub-folder of ``log_dir``.
    :param tensorboard: ``True`` requires TensorBoard, ``False`` skips it, ``None`` uses it
        if installed.
    :raises MissingDependencyError: when ``tensorboard=True`` and it is not installed.
    :raises BadInputError: when ``name`` is empty or ``tensorboard`` is not a bool or ``None``.
    """
    if not isinstance(name, str) or not name.strip():
        raise BadInputError(f"name must be a non-empty str, got {name!r}")
    if tensorboard is not None and not isinstance(tensorboard, bool):
        raise BadInputError(f"tensorboard must be True, False or None, got {tensorboard!r}")
    root = os.fspath(log_dir)
    csv_logger = CSVLogger(root_dir=root, name=name)
    loggers: list[Logger] = [csv_logger]
    if tensorboard is False:
        return loggers
    if not tensorboard_available():
        if tensorboard:
            raise MissingDependencyError(
                "tensorboard=True but the tensorboard package is not installed; "
                "pip install 'etude[tensorboard]' or pass tensorboard=False"
            )
        return loggers
    loggers.append(TensorBoardLogger(root_dir=root, name=name, version=csv_logger.version, default_hp_metric=False))
    return loggers
