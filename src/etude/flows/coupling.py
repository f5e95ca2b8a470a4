"""Affine coupling layers with checkerboard, channel and dense masks.

Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", ICLR 2017 (arXiv:1605.08803),
Sec. 3.3-3.4, Eq. (9): y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x)), log-det = sum (1 - b) s.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from etude.errors import BadInputError
from etude.flows.base import Bijection

__all__ = [
    "MaskedAffineCoupling",
    "ConvNet",
    "MLPNet",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
]


def checkerboard_mask(height: int, width: int, parity: int = 0) -> Tensor:
    """b [1, H, W]: 1 where (i + j + parity) is even (the pixels passed through unchanged)."""
    i, j = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((i + j + parity) % 2 == 0).float().unsqueeze(0)


def channel_mask(channels: int, parity: int = 0) -> Tensor:
    """b [C, 1, 1]: the first half of the channels (second half when parity = 1) pass through."""
    if channels % 2:
        raise BadInputError(f"channel_mask needs an even channel count, got {channels}")
    m = (torch.arange(channels) < channels // 2).float()
    return (m if parity == 0 else 1 - m).reshape(channels, 1, 1)


def alternating_mask(dim: int, parity: int = 0) -> Tensor:
    """b [D]: every other coordinate, starting at index ``parity``, passes through (dense couplings)."""
    return ((torch.arange(dim) + parity) % 2 == 0).float()


class ConvNet(nn.Module):
    """s, t for image couplings: 3x3 conv -> ReLU -> residual blocks -> 3x3 conv (zero-initialised).

    Input [B, C, H, W] (masked); outputs raw s and t, each [B, C, H, W].
    """

    def __init__(self, channels: int, hidden: int = 32, blocks: int = 1):
        super().__init__()
        self.inp = nn.Conv2d(channels + 1, hidden, 3, padding=1)  # +1: a constant channel marks the border
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 1))
            for _ in range(blocks)
        )
        self.out = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
        assert self.out.bias is not None  # built with bias=True
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.inp(torch.cat([x, torch.ones_like(x[:, :1])], dim=1))
        for block in self.blocks:
            h = h + block(h)
        return self.out(torch.relu(h)).chunk(2, dim=1)


class MLPNet(nn.Module):
    """s, t for dense couplings: Linear -> ReLU -> (Linear -> ReLU) x (layers - 1) -> Linear (zero-initialised)."""

    def __init__(self, dim: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        mods: list[nn.Module] = []
        width = dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.body = nn.Sequential(*mods)
        self.out = nn.Linear(width, 2 * dim)
        assert self.out.bias is not None  # built with bias=True
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.out(self.body(x)).chunk(2, dim=-1)


class MaskedAffineCoupling(Bijection):
    """Affine coupling, Eq. (9): y = b x + (1 - b)(x exp(s) + t), with s, t functions of b x.

    ``mask`` b broadcasts to ``shape``, the shape of one example: [1, H, W] checkerboard, [C, 1, 1]
    channel, [D] dense (``shape`` defaults to the mask's). s = scale * tanh(s_raw), with a learnt
    ``scale`` per coordinate, keeps exp(s) bounded (as Real NVP's code does).
    """

    mask: Tensor  # buffer (registered in __init__)

    def __init__(self, mask: Tensor, net: nn.Module, shape: tuple[int, ...] | None = None):
        super().__init__()
        shape = tuple(mask.shape) if shape is None else tuple(shape)
        try:
            fits = torch.broadcast_shapes(mask.shape, shape) == torch.Size(shape)
        except RuntimeError:
            fits = False
        if not fits:
            raise BadInputError(
                f"mask of shape {list(mask.shape)} does not broadcast to the example shape {list(shape)}"
            )
        self.register_buffer("mask", mask.clone())
        self.net = net
        self.scale = nn.Parameter(torch.ones(shape))  # one learnt bound per coordinate

    def _st(self, x_fixed: Tensor) -> tuple[Tensor, Tensor]:
        s_raw, t = self.net(x_fixed)
        free = 1 - self.mask
        return free * self.scale * torch.tanh(s_raw), free * t

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._st(self.mask * x)
        y = self.mask * x + (1 - self.mask) * (x * torch.exp(s) + t)  # Eq. (9)
        return y, s.flatten(1).sum(1)  # log-det = sum over the free coordinates of s

    def inverse(self, y: Tensor) -> Tensor:
        s, t = self._st(self.mask * y)  # b * y = b * x
        return self.mask * y + (1 - self.mask) * (y - t) * torch.exp(-s)
