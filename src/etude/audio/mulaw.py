"""8-bit mu-law companding (ITU-T G.711; WaveNet, van den Oord et al. 2016, arXiv:1609.03499, Sec. 2.2).

Dieleman, van den Oord, Simonyan (NeurIPS 2018, arXiv:1806.10474) model 16 kHz audio as 256
mu-law classes (mu = 255).
"""

from __future__ import annotations

import math

import torch

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = ["mulaw_encode", "mulaw_decode"]


def mulaw_encode(x: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """Audio in [-1, 1] to integer classes in [0, channels).

    f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu), mu = channels - 1 (Eq. 2 of WaveNet), then
    uniform quantization of f(x) in [-1, 1] to `channels` bins.

    :param x: float tensor of any shape [...], values in [-1, 1].
    :returns: LongTensor [...] in [0, channels).
    :raises BadInputError: for a non-float tensor, NaN, or values outside [-1, 1].
    """
    channels = check_int("channels", channels, 2)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise BadInputError(
            f"x must be a float tensor of audio in [-1, 1], got {type(x).__name__}"
            + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else "")
        )
    if x.numel() and (not torch.isfinite(x).all() or x.abs().max() > 1.0):
        raise BadInputError(
            "x must hold finite audio in [-1, 1]; clip or normalize it first "
            f"(found max |x| = {x.abs().max().item():.4g})"
        )
    mu = channels - 1
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)  # f(x) in [-1, 1]
    return ((y + 1) / 2 * mu + 0.5).floor().clamp(0, mu).long()


def mulaw_decode(q: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """Integer classes back to audio in [-1, 1]: x = sign(y) ((1 + mu)^|y| - 1) / mu, y = 2 q / mu - 1.

    :param q: integer tensor [...] in [0, channels).
    :returns: float32 tensor [...] in [-1, 1].
    """
    channels = check_int("channels", channels, 2)
    if not isinstance(q, torch.Tensor) or q.is_floating_point() or q.is_complex():
        raise BadInputError(
            f"q must be an integer tensor of mu-law classes, got {getattr(q, 'dtype', type(q).__name__)}"
        )
    if q.numel() and (q.min() < 0 or q.max() >= channels):
        raise BadInputError(f"q must lie in [0, {channels}), found [{q.min().item()}, {q.max().item()}]")
    mu = channels - 1
    y = 2 * q.float() / mu - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu
