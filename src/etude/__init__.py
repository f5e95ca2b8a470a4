"""etude: tested implementations and one-command reproductions of seven deep-learning papers."""

from etude.errors import (
    BadInputError,
    CheckpointError,
    EtudeError,
    EtudeWarning,
    MissingDependencyError,
)

__version__ = "0.1.0"

__all__ = [
    "BadInputError",
    "CheckpointError",
    "EtudeError",
    "EtudeWarning",
    "MissingDependencyError",
    "__version__",
]
