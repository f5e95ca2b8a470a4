"""Normal log-densities shared by the models of `etude.vi` (internal: models.py and hierarchical.py)."""

from __future__ import annotations

import math

import torch

__all__ = ["normal_log_prob", "normal_log_prob_log_scale"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def normal_log_prob(x: torch.Tensor, loc: torch.Tensor | float, scale: torch.Tensor | float) -> torch.Tensor:
    """log N(x; loc, scale^2), elementwise."""
    if isinstance(scale, float):
        return -0.5 * ((x - loc) / scale) ** 2 - (math.log(scale) + _HALF_LOG_2PI)
    return -0.5 * ((x - loc) / scale) ** 2 - scale.log() - _HALF_LOG_2PI


def normal_log_prob_log_scale(x: torch.Tensor, loc: torch.Tensor | float, log_scale: torch.Tensor) -> torch.Tensor:
    """log N(x; loc, exp(log_scale)^2), elementwise, from the log-scale."""
    return -0.5 * ((x - loc) * torch.exp(-log_scale)) ** 2 - log_scale - _HALF_LOG_2PI
