"""Building blocks of the set models: MLPs, the mean-pooled set summary, per-distribution layers.

Wu et al., AAAI 2020 (arXiv:1902.01950), Sec. 3.2: the summary network applies an MLP to every
element of a context set and averages, s(D) = 1/|D| sum_{x in D} h(x), so it is invariant to the
order of D and to its size; the meta-inference network reads [x, s(D)]. Shapes: B distributions,
N elements each, D data dims, H hidden units, S summary dims.
"""

from __future__ import annotations

import torch
from torch import nn

from etude.errors import BadInputError
from etude.meta.elbo import masked_mean

__all__ = ["PerDistributionMLP", "SetSummary", "check_index", "check_set", "mlp"]


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ELU) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def check_set(name: str, x: object, dim: int, batch: int | None = None) -> torch.Tensor:
    """`x` as a float tensor [B, N, dim]; anything else raises BadInputError naming `name`."""
    if not isinstance(x, torch.Tensor):
        raise BadInputError(f"{name} must be a torch.Tensor [distributions, elements, {dim}], got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != dim or x.shape[1] == 0:
        raise BadInputError(f"{name} must have shape [distributions, elements >= 1, {dim}], got {tuple(x.shape)}")
    if batch is not None and x.shape[0] != batch:
        raise BadInputError(f"{name} must hold {batch} distributions like x, got {x.shape[0]}")
    if not x.is_floating_point():
        raise BadInputError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise BadInputError(f"{name} contains NaN or infinite values")
    return x


def check_mask(name: str, mask: object, like: torch.Tensor) -> torch.Tensor | None:
    """`mask` as a bool tensor [B, N] matching `like` [B, N, D], or None."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.shape != like.shape[:2]:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise BadInputError(f"{name} must be a bool tensor of shape {tuple(like.shape[:2])}, got {got}")
    if mask.dtype != torch.bool:
        raise BadInputError(f"{name} must have dtype torch.bool, got {mask.dtype}")
    if not bool(mask.any(1).all()):
        raise BadInputError(f"{name}: every distribution needs at least one True entry")
    return mask


def check_index(index: object, batch: int, n_distributions: int) -> torch.Tensor:
    """`index` as a long tensor [B] of training-distribution ids in [0, n_distributions)."""
    if not isinstance(index, torch.Tensor) or index.shape != (batch,) or index.dtype not in (torch.int64, torch.int32):
        got = f"{tuple(index.shape)} {index.dtype}" if isinstance(index, torch.Tensor) else type(index).__name__
        raise BadInputError(
            f"index must be an integer tensor of shape ({batch},) naming each distribution's decoder, got {got}"
        )
    if batch and (int(index.min()) < 0 or int(index.max()) >= n_distributions):
        raise BadInputError(
            f"index values must lie in [0, {n_distributions}), got {index.tolist()}; "
            "a new distribution has no decoder: use encode() for it"
        )
    return index.long()


class SetSummary(nn.Module):
    """s(D) = 1/|D| sum_{x in D} h(x) over the unmasked elements: [B, N, D] (+ mask [B, N]) -> [B, S]."""

    def __init__(self, x_dim: int, hidden: int, summary_dim: int) -> None:
        super().__init__()
        self.h = mlp([x_dim, hidden, hidden, summary_dim])

    def forward(self, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_mean(self.h(context), mask, dim=1)


class PerDistributionLinear(nn.Module):
    """M independent linear maps; distribution b uses map index[b]: [B, N, I], [B] -> [B, N, O]."""

    def __init__(self, n: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = in_dim**-0.5
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim).uniform_(-bound, bound))

    def forward(self, h: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias[index], h, self.weight[index])


class PerDistributionMLP(nn.Module):
    """One MLP per training distribution (the paper's one decoder per p_i), batched: [B, N, I], [B] -> [B, N, O]."""

    def __init__(self, n: int, sizes: list[int]) -> None:
        super().__init__()
        self.n = n
        self.layers = nn.ModuleList(PerDistributionLinear(n, a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, h: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            h = layer(h, index)
            if i < len(self.layers) - 1:
                h = nn.functional.elu(h)
        return h
