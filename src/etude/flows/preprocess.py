"""Dequantization and the logit preprocessing of Real NVP, with the exact log-determinant.

Dinh et al., ICLR 2017 (arXiv:1605.08803), Sec. 4.1; as used by BRUNO (Korshunova et al., NeurIPS
2018, arXiv:1802.07535, official code): x_deq = x + u, u ~ U(0, 1)^D on integer levels {0..L-1};
p = alpha/2 + (1 - alpha) x_deq / L; y = logit(p). The density of y therefore converts to a density
over [0, L)^D, whose negative log divided by D ln 2 is the usual bits/dim on L grey levels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from etude.errors import BadInputError
from etude.flows.base import Bijection
from etude.validation import check_number

__all__ = ["LogitTransform", "dequantize"]


def dequantize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """x + u with u ~ U(0, 1) elementwise; x holds integer grey levels (any shape, float)."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise BadInputError(
            f"x must be a floating-point tensor of integer grey levels, got {type(x).__name__}"
            + (f" of dtype {x.dtype}" if isinstance(x, Tensor) else "")
        )
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + u


class LogitTransform(Bijection):
    """y = logit(alpha/2 + (1 - alpha) x / levels) elementwise, for x in [0, levels).

    log|dy/dx| = log((1 - alpha) / levels) - log p - log(1 - p), summed over the example.
    """

    def __init__(self, levels: float = 256.0, alpha: float = 0.05):
        super().__init__()
        check_number("levels", levels, 0, low_open=True)
        check_number("alpha", alpha, 0, 1, low_open=True, high_open=True)
        self.levels, self.alpha = float(levels), float(alpha)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        p = self.alpha / 2 + (1 - self.alpha) * x / self.levels
        y = torch.log(p) - torch.log1p(-p)
        ld = math.log((1 - self.alpha) / self.levels) - torch.log(p) - torch.log1p(-p)
        return y, ld.flatten(1).sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        return (torch.sigmoid(y) - self.alpha / 2) * self.levels / (1 - self.alpha)
