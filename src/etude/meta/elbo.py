"""Closed-form pieces of the evidence lower bound shared by every model in `etude.meta`.

Wu, Choi, Goodman, Ermon, "Meta-Amortized Variational Inference and Learning", AAAI 2020
(arXiv:1902.01950), Sec. 3: every model here maximizes
ELBO(x) = E_q(z|.)[log p(x|z)] - KL(q(z|.) || p(z)), Eq. (1), with Gaussian q and p, so the
KL is computed in closed form; the reconstruction term is a one-sample reparameterized estimate.
Shapes: any leading dims `...`, last dim the event (D for data, Z for latents).
"""

from __future__ import annotations

import math

import torch

from etude.errors import BadInputError

__all__ = [
    "LIKELIHOODS",
    "bernoulli_log_prob",
    "gaussian_kl",
    "gaussian_log_prob",
    "importance_log_likelihood",
    "masked_mean",
    "reparameterize",
]

LIKELIHOODS = ("gaussian", "bernoulli")
_LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mu, diag(exp(logvar))) summed over the last dim: [..., D] -> [...]."""
    return -0.5 * (_LOG_2PI + logvar + (x - mu) ** 2 * torch.exp(-logvar)).sum(-1)


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum_d x_d log sigma(l_d) + (1 - x_d) log(1 - sigma(l_d)) for x in [0, 1]: [..., D] -> [...]."""
    return -torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def gaussian_kl(
    mu_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mu_p: torch.Tensor | None = None,
    logvar_p: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) over the last dim; p defaults to N(0, I).

    KL = 1/2 sum_j [logvar_p - logvar_q + (e^logvar_q + (mu_q - mu_p)^2) / e^logvar_p - 1]: [..., Z] -> [...].
    """
    if mu_p is None:
        mu_p = torch.zeros_like(mu_q)
    if logvar_p is None:
        logvar_p = torch.zeros_like(logvar_q)
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) * torch.exp(-logvar_p) - 1).sum(-1)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) given, or drawn from `generator` (or torch's global one)."""
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    elif eps.shape != mu.shape:
        raise BadInputError(f"eps must have the shape {tuple(mu.shape)} of mu, got {tuple(eps.shape)}")
    return mu + torch.exp(0.5 * logvar) * eps


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Mean of `values` over `dim` counting only entries where `mask` is True (all when None).

    Dividing by the number of kept entries (not by a fixed size) makes a set summary independent
    of how many elements the set has and of padding. `mask` broadcasts against `values` up to `dim`.
    """
    if mask is None:
        return values.mean(dim)
    m = mask.to(values.dtype)
    while m.dim() < values.dim():
        m = m.unsqueeze(-1)
    count = m.sum(dim)
    if bool((count == 0).any()):
        raise BadInputError("every set needs at least one unmasked element; a mask row is all False")
    return (values * m).sum(dim) / count


def importance_log_likelihood(log_joint: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """log p(x) ~= log (1/K) sum_k p(x, z_k) / q(z_k | x), z_k ~ q; samples on dim 0: [K, ...] -> [...].

    A lower bound in expectation that tightens with K (Burda et al. 2016, Eq. 8) and is exact
    for every K when q is the true posterior.
    """
    if log_joint.shape != log_q.shape:
        raise BadInputError(
            f"log_joint and log_q must have one shape, got {tuple(log_joint.shape)} and {tuple(log_q.shape)}"
        )
    k = log_joint.shape[0]
    return torch.logsumexp(log_joint - log_q, dim=0) - math.log(k)
