"""Import an optional package, or say which etude extra installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from etude.errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """``import module``; when it is absent, a ``MissingDependencyError`` naming ``pip install 'etude[extra]'``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or module.split(".")[0] != exc.name.split(".")[0]:
            raise  # something the package itself imports is broken: show that
        raise MissingDependencyError(
            f"{module} is needed here and is not installed: pip install 'etude[{extra}]'"
        ) from exc
