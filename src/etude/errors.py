"""The one error hierarchy of etude.

Every error a user can cause (bad arguments, missing programs, corrupt files) is an
``EtudeError``; the CLI prints its message on one line and exits with status 2.
"""

from __future__ import annotations


class EtudeError(Exception):
    """Base class of every error etude raises on purpose."""


class BadInputError(EtudeError, ValueError):
    """An argument has the wrong shape, type or value; the message names it and what was expected."""


class MissingDependencyError(EtudeError, RuntimeError):
    """An optional program or package is needed and absent; the message says how to install it."""


class CheckpointError(EtudeError, RuntimeError):
    """A checkpoint cannot be read or does not belong to the run being resumed."""


class EtudeWarning(UserWarning):
    """Base class of etude's warnings (non-convergence, lost QMC balance, small samples, ...)."""
