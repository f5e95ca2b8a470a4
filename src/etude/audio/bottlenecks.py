"""Discrete bottlenecks behind one interface: VQ-VAE and the argmax autoencoder (AMAE).

- `VectorQuantizer`: van den Oord, Vinyals, Kavukcuoglu, "Neural Discrete Representation Learning",
  NeurIPS 2017 (arXiv:1711.00937), Eq. 3; EMA updates (its Appendix A.1); k-means init and dead-code
  restarts as in Jukebox (Dhariwal et al. 2020, arXiv:2005.00341, Sec. 3.1).
- `ArgmaxQuantizer`: Dieleman, van den Oord, Simonyan, NeurIPS 2018 (arXiv:1806.10474), Sec. 3.3.

Both take encoder output z [B, D, T] and return a `Quantized` (the decoder's input `codes`
[B, D, T] with straight-through gradients, integer `indices` [B, T] and the auxiliary `loss`).
Under data-parallel training (inside `etude.runtime.global_batch`) every statistic of the batch is
one of the global batch: the AMAE's mean code use q_bar, the VQ's EMA counts and sums, the rows
k-means starts from and dead codes restart on (gathered from every rank, with rank 0's random
draws broadcast), so W ranks update the codebook as one process would on the whole batch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from etude.errors import BadInputError
from etude.runtime.global_batch import batch_mean, batch_rows, batch_sum, from_rank_zero
from etude.validation import check_int

__all__ = ["Quantized", "VectorQuantizer", "ArgmaxQuantizer", "codebook_usage", "code_entropy"]


class Quantized(NamedTuple):
    codes: torch.Tensor
    """[B, D, T] what the decoder sees; its forward value depends only on `indices`."""
    indices: torch.Tensor
    """[B, T] code ids in [0, K)."""
    loss: torch.Tensor
    """Scalar auxiliary loss (VQ: codebook + commitment; AMAE: weighted diversity)."""


def codebook_usage(indices: torch.Tensor, codes: int) -> int:
    """Distinct codes among `indices` (measure it on held-out data)."""
    return int(torch.unique(indices.reshape(-1)).numel()) if indices.numel() else 0


def code_entropy(indices: torch.Tensor, codes: int) -> float:
    """Entropy in bits of the empirical code distribution: -sum_k p_k log2 p_k."""
    counts = torch.bincount(indices.reshape(-1), minlength=codes).double()
    if counts.sum() == 0:
        return 0.0
    p = counts[counts > 0] / counts.sum()
    return max(0.0, float(-(p * p.log2()).sum()))


def _check_z(z: torch.Tensor, dim: int) -> None:
    if not isinstance(z, torch.Tensor) or z.dim() != 3 or z.shape[1] != dim or not z.is_floating_point():
        raise BadInputError(
            f"z expected a float tensor [batch, {dim}, time], found "
            f"{list(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}"
        )


class VectorQuantizer(nn.Module):
    """Nearest-codebook quantization, e = E[argmin_k ||z - E_k||], with a straight-through gradient.

    Loss (Eq. 3): ||sg(z) - e||^2 + beta ||z - sg(e)||^2 (the first term is replaced by EMA updates
    when `ema` is set). Dead-code restart: a code whose EMA usage count falls below
    `restart_threshold` is moved onto a random encoder output of the current batch.

    :param codes: K, the codebook size.
    :param dim: D, the code vector size.
    :param beta: commitment weight.
    :param ema: EMA decay of the codebook (None: learn it by gradient).
    :param kmeans_init: initialize the codebook by k-means on the first training batch.
    :param restart_threshold: minimum EMA usage per batch below which a code restarts (None: never).
    """

    usage: torch.Tensor  # buffers (registered in __init__)
    ema_sum: torch.Tensor
    ema_count: torch.Tensor
    initialized: torch.Tensor

    def __init__(
        self,
        codes: int,
        dim: int,
        beta: float = 0.25,
        ema: float | None = None,
        kmeans_init: bool = False,
        restart_threshold: float | None = None,
        usage_decay: float = 0.99,
    ) -> None:
        super().__init__()
        check_int("codes", codes, 2)
        if ema is not None and not 0 < ema < 1:
            raise BadInputError(f"ema must be a decay in (0, 1) or None, got {ema!r}")
        self.codes, self.dim, self.beta, self.ema = codes, dim, beta, ema
        self.kmeans_init, self.restart_threshold, self.usage_decay = kmeans_init, restart_threshold, usage_decay
        self.codebook = nn.Parameter(torch.randn(codes, dim) / math.sqrt(dim), requires_grad=ema is None)
        self.register_buffer("usage", torch.zeros(codes))  # EMA count per batch; 0: a fresh code is dead until used
        self.register_buffer("ema_sum", self.codebook.detach().clone())
        self.register_buffer("ema_count", torch.ones(codes))
        self.register_buffer("initialized", torch.tensor(not kmeans_init))

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors of `indices` [B, T] as [B, D, T] (the index-to-code round trip)."""
        return self.codebook[indices].transpose(1, 2)

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """argmin_k ||z_n - E_k||^2 for flat [N, D] -> [N]."""
        distance = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)
        return distance.argmin(1)

    @torch.no_grad()
    def _kmeans(self, flat: torch.Tensor, iterations: int = 10) -> None:
        """Lloyd's k-means on the first batch from k-means++ seeds (Arthur, Vassilvitskii 2007: each next
        seed drawn with probability proportional to its squared distance to the nearest seed); the EMA
        statistics and usage counts start from its clusters (a code that k-means left empty starts dead,
        so a restart can place it at once)."""
        centres = flat.new_empty(self.codes, flat.shape[1])
        centres[0] = flat[torch.randint(flat.shape[0], (1,))]
        nearest = (flat - centres[0]).pow(2).sum(1)
        for k in range(1, self.codes):
            weights = nearest if float(nearest.sum()) > 0 else torch.ones_like(nearest)
            centres[k] = flat[torch.multinomial(weights, 1)]
            nearest = torch.minimum(nearest, (flat - centres[k]).pow(2).sum(1))
        counts = torch.zeros(self.codes, 1, dtype=flat.dtype, device=flat.device)
        for _ in range(iterations):
            assign = torch.cdist(flat, centres).argmin(1)
            sums = torch.zeros_like(centres).index_add_(0, assign, flat)
            counts = torch.bincount(assign, minlength=self.codes).unsqueeze(1).to(flat.dtype)
            centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
        self.codebook.data.copy_(centres)
        self.ema_count.copy_(counts[:, 0].clamp(min=1e-3))
        self.ema_sum.copy_(centres * self.ema_count.unsqueeze(1))
        self.usage.copy_(counts[:, 0])
        self.initialized.fill_(True)

    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor) -> int:
        """Move codes with usage below the threshold onto random rows of flat [N, D]; returns how many moved."""
        if self.restart_threshold is None:
            return 0
        dead = (self.usage < self.restart_threshold).nonzero().flatten()
        if len(dead) == 0:
            return 0
        pick = (
            torch.randperm(flat.shape[0])[: len(dead)]
            if flat.shape[0] >= len(dead)  # distinct rows when possible
            else torch.randint(flat.shape[0], (len(dead),))
        )
        rows = flat[pick]
        weight = max(float(self.restart_threshold), 1e-3)  # the moved code counts as `threshold` uses in the EMA
        self.codebook.data[dead] = rows
        self.ema_sum[dead] = rows * weight
        self.ema_count[dead] = weight
        self.usage[dead] = self.restart_threshold  # give the moved code a grace period
        return len(dead)

    def forward(self, z: torch.Tensor) -> Quantized:
        """Quantize z [B, D, T]; in training mode also update EMA statistics and restart dead codes."""
        _check_z(z, self.dim)
        flat = z.transpose(1, 2).reshape(-1, self.dim)
        rows = flat.detach().to(self.codebook.dtype)  # the statistics in the codebook's dtype (under autocast too)
        if self.training and not bool(self.initialized):
            self._kmeans(batch_rows(rows))  # on the global batch; its random seeds are rank 0's
            from_rank_zero(self.codebook.data, self.ema_count, self.ema_sum, self.usage)
        indices = self.nearest(flat.detach())
        e = self.codebook[indices]
        if self.training:
            with torch.no_grad():
                counts = batch_sum(torch.bincount(indices, minlength=self.codes).float())
                self.usage.mul_(self.usage_decay).add_((1 - self.usage_decay) * counts)
                if self.ema is not None:
                    self.ema_count.mul_(self.ema).add_((1 - self.ema) * counts)
                    sums = batch_sum(torch.zeros_like(self.ema_sum).index_add_(0, indices, rows))
                    self.ema_sum.mul_(self.ema).add_((1 - self.ema) * sums)
                    n = self.ema_count.sum()
                    smoothed = (self.ema_count + 1e-5) / (n + self.codes * 1e-5) * n  # Laplace smoothing
                    self.codebook.data.copy_(self.ema_sum / smoothed.unsqueeze(1))
        commitment = F.mse_loss(flat, e.detach())
        loss = self.beta * commitment + (0.0 if self.ema is not None else F.mse_loss(e, flat.detach()))
        if self.training and self.restart_threshold is not None and bool((self.usage < self.restart_threshold).any()):
            self.restart_dead(batch_rows(rows))  # the dead codes are the same on every rank (usage is global)
            from_rank_zero(self.codebook.data, self.ema_sum)  # the rows they moved onto: rank 0's draw
        # straight-through, e + (z - sg z): the forward value is e exactly, the decoder's gradient goes to z
        # only; the codebook learns from ||sg(z) - e||^2 alone (or from EMA updates).
        st = e.detach() + (flat - flat.detach())
        codes = st.reshape(z.shape[0], z.shape[2], self.dim).transpose(1, 2)
        return Quantized(codes, indices.reshape(z.shape[0], z.shape[2]), loss)


class ArgmaxQuantizer(nn.Module):
    """The argmax autoencoder's bottleneck (Sec. 3.3): no codebook, one-hot codes.

    q = relu(q~) / (sum_k relu(q~)_k + eps);  code = one_hot(argmax_k q) with gradient of q
    (straight-through: q + sg(one_hot - q)). Diversity loss: q_bar = mean of q over batch and time,
    L_div = mean_k (K q_bar_k - 1)^2 (the paper's sum divided by K), weighted by `diversity`.

    :param codes: K; the encoder emits K channels and the decoder embeds the one-hot.
    :param diversity: weight of L_div (0 disables it).
    """

    def __init__(self, codes: int, diversity: float = 0.1, eps: float = 1e-6) -> None:
        super().__init__()
        check_int("codes", codes, 2)
        if not diversity >= 0:
            raise BadInputError(f"diversity must be >= 0, got {diversity!r}")
        self.codes, self.dim, self.diversity, self.eps = codes, codes, diversity, eps

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """One-hot codes [B, K, T] of `indices` [B, T]."""
        return F.one_hot(indices, self.codes).transpose(1, 2).float()

    def forward(self, z: torch.Tensor) -> Quantized:
        _check_z(z, self.codes)
        r = F.relu(z)
        q = r / (r.sum(1, keepdim=True) + self.eps)  # [B, K, T], ReLU-normalized
        indices = q.argmax(1)
        onehot = self.lookup(indices).to(q.dtype)
        codes = q + (onehot - q).detach()
        q_bar = batch_mean(q, dim=(0, 2))  # over the global batch under data parallelism
        loss = self.diversity * (self.codes * q_bar - 1).pow(2).mean()
        return Quantized(codes, indices, loss)
