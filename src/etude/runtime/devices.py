"""Device choice from a preset's string: 'cpu', 'cuda' or 'auto' (cuda when available)."""

from __future__ import annotations

import torch

from etude.errors import BadInputError

__all__ = ["DEVICES", "resolve_device"]

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device named by `name`; 'auto' picks cuda when one is available, else cpu."""
    if name not in DEVICES:
        raise BadInputError(f"device must be one of {DEVICES}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
