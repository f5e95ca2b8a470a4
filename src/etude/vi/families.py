"""Gaussian variational families with reparameterized sampling, z = T_lambda(eps), eps ~ N(0, I).

Buchholz, Wenzel, Mandt, ICML 2018 (arXiv:1807.01604), Sec. 3: the reparameterization
z = mu + sigma * eps (mean-field) or z = mu + L eps (full-rank) turns the ELBO into an expectation
over the base distribution of eps = Phi^{-1}(u), u uniform on the cube, which is what (R)QMC
points replace.

Notation: loc = mu, log_scale = omega with sigma = exp(omega), raw_tril holds L's strictly lower
part and log diag(L) on its diagonal. Parameters may carry leading batch dimensions [..., d]
(independent copies: seeds or replicates), see ``replicate``.
"""

from __future__ import annotations

import math
from typing import Self

import torch

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = ["GaussianFamily", "MeanFieldGaussian", "FullRankGaussian", "FAMILIES", "make_family"]

_LOG_2PI_E = math.log(2 * math.pi) + 1.0


def _vector(name: str, value: object, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """A fresh [dim] tensor from a scalar or a [dim] vector."""
    tensor = torch.as_tensor(value, dtype=dtype)
    if tensor.dim() > 1 or (tensor.dim() == 1 and tensor.shape[0] != dim):
        raise BadInputError(f"{name} must be a scalar or have shape ({dim},), got shape {tuple(tensor.shape)}")
    return tensor.expand(dim).clone()


class GaussianFamily:
    """Shared interface: ``rsample(eps)``, ``entropy()``, ``log_prob(z)``, ``parameters()``."""

    dim: int
    batch_shape: torch.Size
    loc: torch.Tensor  # mu [..., d]

    def parameters(self) -> list[torch.Tensor]:
        """The leaf tensors an optimizer updates."""
        raise NotImplementedError

    def rsample(self, eps: torch.Tensor) -> torch.Tensor:
        """z [..., n, d] from base normals eps [..., n, d] (or [n, d] for an unbatched family)."""
        raise NotImplementedError

    def entropy(self) -> torch.Tensor:
        """H[q] = 1/2 log det(2 pi e Sigma), shape batch_shape."""
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z) for z [..., n, d] -> [..., n]."""
        raise NotImplementedError

    def replicate(self, copies: int) -> Self:
        """``copies`` independent leaf copies of this (unbatched) family, batch shape [copies]."""
        if self.batch_shape != torch.Size():
            raise BadInputError(f"replicate needs an unbatched family, got batch shape {tuple(self.batch_shape)}")
        check_int("copies", copies, 1)
        return self._with([p.detach().expand(copies, *p.shape).clone() for p in self.parameters()])

    def select(self, index: int) -> Self:
        """Copy number ``index`` of a batched family, as a fresh unbatched family."""
        return self._with([p.detach()[index].clone() for p in self.parameters()])

    def flat_parameters(self) -> torch.Tensor:
        """lambda [..., P]: every parameter flattened and concatenated (loc first)."""
        batch = len(self.batch_shape)
        return torch.cat([p.detach().reshape(*p.shape[:batch], -1) for p in self.parameters()], -1)

    def _with(self, params: list[torch.Tensor]) -> Self:
        raise NotImplementedError


class MeanFieldGaussian(GaussianFamily):
    """q(z) = N(mu, diag(sigma^2)), sigma = exp(omega); z = mu + sigma * eps.

    :param dim: d.
    :param loc: mu, [d] or broadcastable (default 0).
    :param scale: initial sigma, a positive float or [d] (default 0.1).
    """

    def __init__(self, dim: int, loc: object = 0.0, scale: object = 0.1, dtype: torch.dtype = torch.float64) -> None:
        check_int("dim", dim, 1)
        scale_t = torch.as_tensor(scale, dtype=dtype)
        if not bool((scale_t > 0).all()):
            raise BadInputError(f"scale must be positive, got {scale!r}")
        self.dim = dim
        self.loc = _vector("loc", loc, dim, dtype).requires_grad_()
        self.log_scale = _vector("scale", scale_t.log(), dim, dtype).requires_grad_()
        self.batch_shape = self.loc.shape[:-1]

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def parameters(self) -> list[torch.Tensor]:
        return [self.loc, self.log_scale]

    def rsample(self, eps: torch.Tensor) -> torch.Tensor:
        return self.loc.unsqueeze(-2) + self.scale.unsqueeze(-2) * eps  # z = mu + sigma * eps

    def entropy(self) -> torch.Tensor:
        return self.log_scale.sum(-1) + 0.5 * self.dim * _LOG_2PI_E  # sum omega + d/2 log(2 pi e)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        eps = (z - self.loc.unsqueeze(-2)) / self.scale.unsqueeze(-2)
        return -0.5 * (eps**2).sum(-1) - self.log_scale.sum(-1, keepdim=True) - 0.5 * self.dim * math.log(2 * math.pi)

    def covariance(self) -> torch.Tensor:
        return torch.diag_embed(self.scale.detach() ** 2)

    def _with(self, params: list[torch.Tensor]) -> Self:
        new = object.__new__(type(self))
        new.dim, new.loc, new.log_scale = self.dim, params[0].requires_grad_(), params[1].requires_grad_()
        new.batch_shape = new.loc.shape[:-1]
        return new


class FullRankGaussian(GaussianFamily):
    """q(z) = N(mu, L L^T), L lower triangular with diag(L) = exp(raw diagonal); z = mu + L eps.

    :param dim: d.
    :param loc: mu (default 0).
    :param scale: initial diag(L) (default 0.1); the strictly lower part starts at 0.
    """

    def __init__(self, dim: int, loc: object = 0.0, scale: object = 0.1, dtype: torch.dtype = torch.float64) -> None:
        mean_field = MeanFieldGaussian(dim, loc, scale, dtype)
        self.dim = dim
        self.loc = mean_field.loc
        self.raw_tril = torch.diag_embed(mean_field.log_scale.detach()).requires_grad_()
        self.batch_shape = self.loc.shape[:-1]

    @property
    def scale_tril(self) -> torch.Tensor:
        diag = torch.diagonal(self.raw_tril, dim1=-2, dim2=-1)
        return torch.tril(self.raw_tril, diagonal=-1) + torch.diag_embed(diag.exp())

    def parameters(self) -> list[torch.Tensor]:
        return [self.loc, self.raw_tril]

    def rsample(self, eps: torch.Tensor) -> torch.Tensor:
        return self.loc.unsqueeze(-2) + eps @ self.scale_tril.transpose(-1, -2)  # z = mu + L eps

    def entropy(self) -> torch.Tensor:
        return torch.diagonal(self.raw_tril, dim1=-2, dim2=-1).sum(-1) + 0.5 * self.dim * _LOG_2PI_E

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        diff = (z - self.loc.unsqueeze(-2)).unsqueeze(-1)  # [..., n, d, 1]
        tril = self.scale_tril.unsqueeze(-3)
        eps = torch.linalg.solve_triangular(tril, diff, upper=False).squeeze(-1)
        log_det = torch.diagonal(self.raw_tril, dim1=-2, dim2=-1).sum(-1, keepdim=True)
        return -0.5 * (eps**2).sum(-1) - log_det - 0.5 * self.dim * math.log(2 * math.pi)

    def covariance(self) -> torch.Tensor:
        tril = self.scale_tril.detach()
        return tril @ tril.transpose(-1, -2)

    def _with(self, params: list[torch.Tensor]) -> Self:
        new = object.__new__(type(self))
        new.dim, new.loc, new.raw_tril = self.dim, params[0].requires_grad_(), params[1].requires_grad_()
        new.batch_shape = new.loc.shape[:-1]
        return new


FAMILIES = {"mean-field": MeanFieldGaussian, "full-rank": FullRankGaussian}


def make_family(kind: str, dim: int, **kwargs: object) -> GaussianFamily:
    """``MeanFieldGaussian`` for 'mean-field', ``FullRankGaussian`` for 'full-rank'."""
    if kind not in FAMILIES:
        raise BadInputError(f"family must be one of {sorted(FAMILIES)}, got {kind!r}")
    return FAMILIES[kind](dim, **kwargs)  # type: ignore[arg-type]
