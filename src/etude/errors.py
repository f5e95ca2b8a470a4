"""The one error hierarchy of etude.

Every error a user can cause (bad arguments, missing programs, corrupt files) is an
``EtudeError``; the CLI prints its message on one line and exits with status 2.
"""

from __future__ import annotations

import sys
import warnings
from types import FrameType

__all__ = [
    "one_line",
    "BadInputError",
    "CheckpointError",
    "EtudeError",
    "EtudeWarning",
    "MissingDataError",
    "MissingDependencyError",
    "caller_stacklevel",
    "warn_at_caller",
]

_LIBRARIES = ("etude", "torch", "pyro", "numpy", "contextlib", "functools")
"""Top-level packages whose frames a warning skips to reach the user's line."""


class EtudeError(Exception):
    """Base class of every error etude raises on purpose."""


class BadInputError(EtudeError, ValueError):
    """An argument has the wrong shape, type or value; the message names it and what was expected."""


class MissingDependencyError(EtudeError, RuntimeError):
    """An optional program or package is needed and absent; the message says how to install it."""


class MissingDataError(EtudeError, FileNotFoundError):
    """A dataset is not where etude looks for it; the message names the places and the command that gets it."""


class CheckpointError(EtudeError, RuntimeError):
    """A checkpoint cannot be read or does not belong to the run being resumed."""


class EtudeWarning(UserWarning):
    """Base class of etude's warnings (non-convergence, lost QMC balance, small samples, ...)."""


def caller_stacklevel(skip: tuple[str, ...] = _LIBRARIES) -> int:
    """The ``stacklevel`` (relative to the caller of this function) of the first frame outside ``skip``."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] not in skip and not frame.f_code.co_filename.startswith("<frozen"):
            return level
        frame, level = frame.f_back, level + 1
    return level


def warn_at_caller(message: str, category: type[Warning] = UserWarning, skip: tuple[str, ...] = _LIBRARIES) -> None:
    """``warnings.warn`` pointing at the first frame outside etude and the libraries it calls through."""
    warnings.warn(message, category, stacklevel=caller_stacklevel(skip))


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (whitespace runs, newlines included, become one space), for messages
    that quote another library's exception."""
    return " ".join(str(error).split()) or type(error).__name__
