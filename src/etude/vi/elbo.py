"""Reparameterized ELBO and IWAE estimators on any base sampler, their gradient replicates, and
the growing sample-size schedule.

Buchholz, Wenzel, Mandt, "Quasi-Monte Carlo Variational Inference", ICML 2018 (arXiv:1807.01604).
Sec. 3 (QMCVI): the ELBO L(lambda) = E_q[log p(x, z)] + H[q] is estimated with base points
eps_n = Phi^{-1}(u_n) from MC, QMC or RQMC,

    L_hat(lambda) = 1/N sum_n log p(x, T_lambda(eps_n)) + H[q_lambda],

and its gradient by autograd through T_lambda. Sec. 4: with a constant learning rate, letting N
grow geometrically over the iterations makes SGD converge, faster with RQMC (gradient variance
O(N^-2) up to logs) than with MC (O(N^-1)) -- ``SampleSizeSchedule``.
The importance-weighted bound (Burda et al. 2016) uses the same samplers:
L_K = E[log 1/K sum_k p(x, z_k) / q(z_k)].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from etude.errors import BadInputError
from etude.validation import check_int, check_number
from etude.vi.families import GaussianFamily
from etude.vi.qmc import BaseSampler, is_power_of_two

__all__ = ["LogJoint", "ENTROPY", "elbo", "iwae", "base_normals", "gradient_replicates", "SampleSizeSchedule"]

LogJoint = Callable[[torch.Tensor], torch.Tensor]
"""log p(x, z): z [..., d] -> [...], differentiable in z."""
ENTROPY = ("analytic", "sampled")


def _finite(name: str, value: torch.Tensor) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or not bool(torch.isfinite(value).all()):
        raise BadInputError(
            f"{name} must be a finite tensor, got {'NaN or infinite values' if isinstance(value, torch.Tensor) else type(value).__name__}"
        )
    return value


MAX_DRAW_BYTES = 2**31
"""Most bytes of base normals one estimate may draw (copies x n x d x the dtype's size, 2 GiB); the
estimate holds a few tensors of that size (eps, z), so a larger ``n`` is refused up front."""


def base_normals(sampler: BaseSampler | Sequence[BaseSampler], n: int, family: GaussianFamily) -> torch.Tensor:
    """eps [..., n, d]: one point set of n base normals per copy of the family.

    An unbatched family takes one sampler; a family with batch shape [S] takes a sequence of S
    samplers (one per seed) or one sampler called S times (independent randomizations).

    :raises BadInputError: when the draws would take more than ``MAX_DRAW_BYTES``.
    """
    check_int("n", n, 1)
    dtype = family.loc.dtype
    batch = family.batch_shape
    size = math.prod(batch) * n * family.dim * dtype.itemsize
    if size > MAX_DRAW_BYTES:
        raise BadInputError(
            f"n = {n:,} base points of dim {family.dim} for {math.prod(batch)} copies need {size / 2**30:,.1f} GiB; "
            f"at most {MAX_DRAW_BYTES / 2**30:g} GiB (etude.vi.elbo.MAX_DRAW_BYTES)"
        )
    per_copy = isinstance(sampler, Sequence)  # one sampler per copy, or one for all
    samplers = list(sampler) if isinstance(sampler, Sequence) else [sampler]
    if not samplers:
        raise BadInputError("sampler must be a sampler or a non-empty sequence of samplers, got an empty sequence")
    if samplers[0].dim != family.dim:
        raise BadInputError(f"sampler dim must equal the family's dim {family.dim}, got {samplers[0].dim}")
    if len(batch) == 0:
        if per_copy:
            raise BadInputError("an unbatched family takes one sampler, not a sequence")
        return samplers[0].normal(n, dtype)
    if len(batch) != 1:
        raise BadInputError(f"families with one batch dimension are supported, got {tuple(batch)}")
    if per_copy and len(samplers) != batch[0]:
        raise BadInputError(f"expected {batch[0]} samplers (one per copy), got {len(samplers)}")
    draws = [samplers[i if per_copy else 0].normal(n, dtype) for i in range(batch[0])]
    return torch.stack(draws)


def elbo(
    log_joint: LogJoint,
    family: GaussianFamily,
    sampler: BaseSampler | Sequence[BaseSampler],
    n: int,
    entropy: str = "analytic",
    eps: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_hat = 1/N sum_n log p(x, T(eps_n)) + H[q] (Sec. 3), shape = the family's batch shape.

    :param log_joint: log p(x, z), z [..., d] -> [...].
    :param family: q_lambda (``MeanFieldGaussian`` or ``FullRankGaussian``).
    :param sampler: base sampler(s), see ``base_normals``.
    :param n: N, base points per estimate.
    :param entropy: 'analytic' (H[q] in closed form) or 'sampled' (-1/N sum log q(z_n), as Pyro's
        Trace_ELBO does; same gradient in expectation, different variance of the value).
    :param eps: reuse these base normals [..., n, d] instead of drawing (common random numbers).
    """
    if entropy not in ENTROPY:
        raise BadInputError(f"entropy must be one of {ENTROPY}, got {entropy!r}")
    eps = base_normals(sampler, n, family) if eps is None else _finite("eps", eps)
    z = family.rsample(eps)
    if entropy == "analytic":
        return log_joint(z).mean(-1) + family.entropy()
    return (log_joint(z) - family.log_prob(z)).mean(-1)


def iwae(
    log_joint: LogJoint,
    family: GaussianFamily,
    sampler: BaseSampler | Sequence[BaseSampler],
    k: int,
    eps: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_K_hat = log 1/K sum_k exp(log p(x, z_k) - log q(z_k)), z_k = T(eps_k), one K-point set."""
    eps = base_normals(sampler, k, family) if eps is None else _finite("eps", eps)
    z = family.rsample(eps)
    log_w = log_joint(z) - family.log_prob(z)
    return torch.logsumexp(log_w, -1) - math.log(log_w.shape[-1])


def gradient_replicates(
    log_joint: LogJoint,
    family: GaussianFamily,
    sampler: BaseSampler,
    n: int,
    replicates: int,
    max_points: int = 4096,
    objective: str = "elbo",
) -> torch.Tensor:
    """Independent gradient estimates g_r = grad_lambda L_hat_r [replicates, P] at the family's lambda.

    Each replicate draws its own point set (a fresh randomization for RQMC). Replicates are
    batched (the family is copied ``replicate`` times as leaves), at most ``max_points`` base
    points per batch, so one backward pass gives every replicate's gradient.

    :param objective: 'elbo' or 'iwae' (then n is K).
    """
    check_int("replicates", replicates, 1)
    check_int("max_points", max_points, 1)
    if objective not in ("elbo", "iwae"):
        raise BadInputError(f"objective must be 'elbo' or 'iwae', got {objective!r}")
    per_batch = max(1, max_points // check_int("n", n, 1))
    out = []
    for start in range(0, replicates, per_batch):
        copies = family.replicate(min(per_batch, replicates - start))
        if objective == "elbo":
            value = elbo(log_joint, copies, sampler, n).sum()
        else:
            value = iwae(log_joint, copies, sampler, n).sum()
        grads = torch.autograd.grad(value, copies.parameters())
        out.append(torch.cat([g.reshape(g.shape[0], -1) for g in grads], -1))
    return torch.cat(out)


@dataclass(frozen=True)
class SampleSizeSchedule:
    """N_t = min(stop, start * factor^floor(t / every)), rounded up to a power of two if asked.

    The paper's scheme (Sec. 4) keeps the learning rate constant and grows N geometrically;
    factor=2 and every=K doubles N every K iterations (2, 4, ..., 1024).
    """

    start: int = 2
    """N at iteration 0."""
    stop: int = 1024
    """Largest N."""
    factor: float = 2.0
    """Growth factor applied every ``every`` iterations."""
    every: int = 100
    """Iterations between growth steps."""
    power_of_two: bool = True
    """Round every N up to a power of two (Sobol's balanced sizes)."""

    def __post_init__(self) -> None:
        check_int("start", self.start, 1)
        check_int("every", self.every, 1)
        check_int("stop", self.stop, self.start)
        check_number("factor", self.factor, 1)
        if self.power_of_two and not is_power_of_two(self.stop):
            raise BadInputError(f"stop must be a power of two when power_of_two=True, got {self.stop}")

    def __call__(self, t: int) -> int:
        check_int("iteration t", t, 0)
        exponent = t // self.every
        if self.factor > 1 and exponent > math.log(self.stop / self.start, self.factor) + 1:
            return self.stop
        n = min(self.stop, math.ceil(self.start * self.factor**exponent - 1e-9))
        if self.power_of_two:
            n = 1 << (n - 1).bit_length()
        return min(n, self.stop)

    def stages(self) -> list[int]:
        """The distinct sample sizes in order, each used for ``every`` iterations (the last one onwards)."""
        sizes, t = [self(0)], 0
        while sizes[-1] < self.stop and self.factor > 1:
            t += self.every
            if self(t) != sizes[-1]:
                sizes.append(self(t))
        return sizes

    def iterations(self) -> int:
        """Iterations until N first reaches ``stop``, plus one more stage of ``every`` at ``stop``."""
        t = 0
        while self(t) < self.stop and self.factor > 1:
            t += self.every
        return t + self.every
