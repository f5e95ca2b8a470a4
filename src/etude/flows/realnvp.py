"""Multi-scale Real NVP for images and the dense (fully connected) Real NVP.

Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", ICLR 2017 (arXiv:1605.08803),
Sec. 3.6 (multi-scale architecture) and 4.1: each scale but the last applies 3 checkerboard
couplings, a squeeze, 3 channel couplings and factors out half of the channels; the last scale
applies 4 checkerboard couplings. Batch normalisation is left out (the log-det stays that of the
couplings alone). BRUNO's dense-only MNIST model is ``DenseRealNVP``.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn

from etude.errors import BadInputError
from etude.flows.base import Bijection, FlowSequence, Squeeze, check_shape
from etude.flows.coupling import (
    ConvNet,
    MaskedAffineCoupling,
    MLPNet,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
)
from etude.validation import check_int

__all__ = ["DenseRealNVP", "RealNVP"]


class RealNVP(Bijection):
    """Images [B, C, H, W] <-> latents z [B, C*H*W] (factored-out parts first, then the last scale).

    :param shape: (C, H, W) of one image; H and W divisible by 2^(scales - 1).
    :param hidden: channels of each coupling's ConvNet.
    :param blocks: residual blocks per ConvNet.
    :param scales: number of scales (1 = only the final checkerboard couplings).
    :param couplings: couplings per mask type at each scale but the last (paper: 3).
    :param final_couplings: checkerboard couplings at the last scale (paper: 4).
    """

    def __init__(
        self,
        shape: tuple[int, int, int] = (1, 8, 8),
        hidden: int = 32,
        blocks: int = 1,
        scales: int = 2,
        couplings: int = 3,
        final_couplings: int = 4,
    ):
        super().__init__()
        if not (
            isinstance(shape, (tuple, list))
            and len(shape) == 3
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
        ):
            raise BadInputError(f"shape must be (channels, height, width) of positive ints, got {shape!r}")
        for name, value in (
            ("hidden", hidden),
            ("scales", scales),
            ("couplings", couplings),
            ("final_couplings", final_couplings),
        ):
            check_int(name, value, 1)
        check_int("blocks", blocks, 0)
        c, h, w = shape
        if h % 2 ** (scales - 1) or w % 2 ** (scales - 1):
            raise BadInputError(
                f"height and width must be divisible by 2^(scales-1) = {2 ** (scales - 1)}, "
                f"got {h}x{w} with scales={scales}"
            )
        self.shape = tuple(shape)
        self.stages = nn.ModuleList()
        self.out_shapes: list[tuple[int, int, int]] = []  # shape of each factored-out part
        for _ in range(scales - 1):
            layers: list[Bijection] = [
                MaskedAffineCoupling(checkerboard_mask(h, w, k % 2), ConvNet(c, hidden, blocks), (c, h, w))
                for k in range(couplings)
            ]
            layers.append(Squeeze())
            c, h, w = 4 * c, h // 2, w // 2
            layers += [
                MaskedAffineCoupling(channel_mask(c, k % 2), ConvNet(c, hidden, blocks), (c, h, w))
                for k in range(couplings)
            ]
            self.stages.append(FlowSequence(layers))
            self.out_shapes.append((c // 2, h, w))  # factor out: the first half of the channels leaves
            c = c // 2
        self.final = FlowSequence(
            MaskedAffineCoupling(checkerboard_mask(h, w, k % 2), ConvNet(c, hidden, blocks), (c, h, w))
            for k in range(final_couplings)
        )
        self.final_shape = (c, h, w)
        self.dim = math.prod(shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape("x", x, self.shape)
        log_det = x.new_zeros(x.shape[0])
        parts = []
        for stage, out_shape in zip(self.stages, self.out_shapes):
            x, ld = stage(x)
            log_det = log_det + ld
            parts.append(x[:, : out_shape[0]].flatten(1))  # factor-out (Sec. 3.6)
            x = x[:, out_shape[0] :]
        x, ld = self.final(x)
        parts.append(x.flatten(1))
        return torch.cat(parts, dim=1), log_det + ld

    def inverse(self, z: Tensor) -> Tensor:
        check_shape("z", z, (self.dim,))
        sizes = [math.prod(s) for s in self.out_shapes] + [math.prod(self.final_shape)]
        pieces = list(z.split(sizes, dim=1))
        x = self.final.inverse(pieces[-1].reshape(-1, *self.final_shape))
        stages = cast("list[FlowSequence]", list(self.stages))  # a ModuleList yields nn.Module
        for stage, out_shape, piece in zip(reversed(stages), reversed(self.out_shapes), reversed(pieces[:-1])):
            x = stage.inverse(torch.cat([piece.reshape(-1, *out_shape), x], dim=1))
        return x


class DenseRealNVP(Bijection):
    """Examples [B, *shape] flattened to [B, D], then ``layers`` dense couplings with alternating masks.

    Output z [B, D]; ``inverse`` returns [B, *shape].
    """

    def __init__(self, shape: tuple[int, ...] = (1, 8, 8), hidden: int = 256, layers: int = 6, depth: int = 2):
        super().__init__()
        if not (
            isinstance(shape, (tuple, list))
            and shape
            and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
        ):
            raise BadInputError(f"shape must be a tuple of positive ints, got {shape!r}")
        check_int("hidden", hidden, 1)
        check_int("layers", layers, 1)
        check_int("depth", depth, 1)
        self.shape = tuple(shape)
        self.dim = math.prod(shape)
        self.body = FlowSequence(
            MaskedAffineCoupling(alternating_mask(self.dim, k % 2), MLPNet(self.dim, hidden, depth))
            for k in range(layers)
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_shape("x", x, self.shape)
        return self.body(x.flatten(1))

    def inverse(self, z: Tensor) -> Tensor:
        check_shape("z", z, (self.dim,))
        return self.body.inverse(z).reshape(-1, *self.shape)
