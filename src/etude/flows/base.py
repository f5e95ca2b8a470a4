"""Bijections with exact log-determinants: the interface, composition and squeeze.

Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", ICLR 2017 (arXiv:1605.08803),
Sec. 3.6 (squeeze). Every bijection maps ``x -> (y, log|det dy/dx|)`` per example and inverts exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from torch import Tensor, nn

from etude.errors import BadInputError

__all__ = ["Bijection", "Flatten", "FlowSequence", "Squeeze", "check_shape"]


def check_shape(name: str, x: object, shape: tuple[int, ...]) -> Tensor:
    """Raise BadInputError unless ``x`` is a float tensor of shape [batch, *shape]."""
    if not isinstance(x, Tensor):
        raise BadInputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise BadInputError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if tuple(x.shape[1:]) != tuple(shape) or x.dim() != len(shape) + 1:
        raise BadInputError(f"{name}: expected shape [batch, {', '.join(map(str, shape))}], found {list(x.shape)}")
    return x


class Bijection(nn.Module):
    """An invertible map with a tractable Jacobian.

    ``forward(x)`` returns ``(y, log_det)`` with ``log_det[b] = log|det dy_b/dx_b|`` (shape [batch]);
    ``inverse(y)`` returns ``x``.
    """

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def inverse(self, y: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def log_det(self, x: Tensor) -> Tensor:
        """log|det dy/dx| per example: [batch]."""
        return self.forward(x)[1]


class FlowSequence(Bijection):
    """Composition y = f_K(...f_1(x)); log-dets add (chain rule)."""

    def __init__(self, layers: Iterable[Bijection]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            total = total + ld
        return x, total

    def inverse(self, y: Tensor) -> Tensor:
        for layer in reversed(cast("list[Bijection]", list(self.layers))):  # a ModuleList yields nn.Module
            y = layer.inverse(y)
        return y


class Squeeze(Bijection):
    """[B, C, H, W] -> [B, 4C, H/2, W/2]: each 2x2 block becomes 4 channels (a permutation, log-det 0)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise BadInputError(f"Squeeze needs even height and width, found {h}x{w}")
        y = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(b)

    def inverse(self, y: Tensor) -> Tensor:
        b, c4, h, w = y.shape
        c = c4 // 4
        return y.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)


class Flatten(Bijection):
    """[B, *shape] -> [B, prod(shape)] (log-det 0); the identity flow of a no-flow model."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape("x", x, self.shape)
        return x.flatten(1), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y.reshape(-1, *self.shape)
