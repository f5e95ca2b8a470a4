"""The interface every model of `etude.meta` shares: ELBO terms, encoding, importance sampling.

A model sees a batch of B distributions: x [B, N, D] elements to explain (mask [B, N]), a
context set [B, C, D] from the same distributions (mask [B, C]) and, for models with one
decoder per training distribution, index [B]. Subclasses say how the context conditions the
encoder (`_condition`), the encoder q(z | x, .), the prior over z and the decoder; the bound is
ELBO_b = mean_{x in X_b}[E_q log p(x|z) - KL(q(z|x,.) || p(z|.))] - w_b KL(q(c|D_b) || p(c)), Eq. (1)
of Wu et al. 2020 with the per-set term of Edwards & Storkey 2017 (zero for models without c).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from etude.errors import BadInputError
from etude.meta.elbo import (
    LIKELIHOODS,
    bernoulli_log_prob,
    gaussian_kl,
    gaussian_log_prob,
    importance_log_likelihood,
    masked_mean,
    reparameterize,
)
from etude.meta.layers import check_index, check_mask, check_set
from etude.validation import check_int

__all__ = ["ElboTerms", "SetModel"]


@dataclass
class ElboTerms:
    """Per-distribution terms [B]: elbo = recon - kl - kl_global (means over each set's elements)."""

    elbo: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    kl_global: torch.Tensor


class SetModel(nn.Module):
    """Shared machinery; see the module docstring for shapes. Not used directly."""

    needs_index: bool = True
    """Whether the decoder (or encoder) is chosen per training distribution by `index`."""
    x_is_context: bool = False
    """Whether a missing context set means 'the set x itself' (Neural Statistician)."""

    def __init__(self, x_dim: int, z_dim: int, likelihood: str) -> None:
        super().__init__()
        for name, value in (("x_dim", x_dim), ("z_dim", z_dim)):
            check_int(name, value, 1)
        if likelihood not in LIKELIHOODS:
            raise BadInputError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.x_dim, self.z_dim, self.likelihood = x_dim, z_dim, likelihood
        self.n_distributions = 0

    # -- what subclasses provide -------------------------------------------------------------
    def _condition(
        self, x, context, context_mask, index, noise: dict[str, torch.Tensor] | None, sample: bool
    ) -> dict[str, Any]:
        """Whatever conditions q and p on the set (a summary, a c sampled with ``noise['c']``); may add 'kl_global' [B]."""
        raise NotImplementedError

    def _noise_shapes(self, sets: int, elements: int) -> dict[str, tuple[int, ...]]:
        """Shapes of the N(0, I) noise of one ELBO sample, in the order it is drawn: z [B, N, Z]."""
        return {"z": (sets, elements, self.z_dim)}

    def _posterior(self, x: torch.Tensor, cond: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) [B, N, Z] of q(z | x, .)."""
        raise NotImplementedError

    def _prior(self, cond: dict, like: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(mu, logvar) of p(z | .) broadcastable to `like` [B, N, Z]; (None, None) means N(0, I)."""
        return None, None

    def _decode(self, z: torch.Tensor, cond: dict) -> torch.Tensor:
        """Likelihood parameters [B, N, 2D] (Gaussian mean, log-variance) or [B, N, D] (Bernoulli logits)."""
        raise NotImplementedError

    def _global_weight(self, x_mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """w_b, the weight of the per-set KL in each set's mean ELBO: 1 / |X_b| (Neural Statistician)."""
        return 1.0 / (
            x_mask.sum(1).to(x.dtype)
            if x_mask is not None
            else torch.full(x.shape[:1], float(x.shape[1]), dtype=x.dtype)
        )

    # -- the shared interface ----------------------------------------------------------------
    def _out_dim(self) -> int:
        return 2 * self.x_dim if self.likelihood == "gaussian" else self.x_dim

    def log_px(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x | z) from decoder outputs: [B, N, D], [B, N, out] -> [B, N]."""
        if self.likelihood == "gaussian":
            mu, logvar = params.chunk(2, dim=-1)
            return gaussian_log_prob(x, mu, logvar.clamp(-8.0, 8.0))
        return bernoulli_log_prob(x, params)

    def _check(self, x, context, x_mask, context_mask, index, need_index: bool):
        x = check_set("x", x, self.x_dim)
        if context is None and self.x_is_context:
            context, context_mask = x, x_mask
        if context is not None:
            context = check_set("context", context, self.x_dim, batch=x.shape[0])
        x_mask = check_mask("x_mask", x_mask, x)
        context_mask = check_mask("context_mask", context_mask, context) if context is not None else None
        if need_index and self.needs_index:
            if index is None:
                raise BadInputError(
                    f"{type(self).__name__} needs index [B]: which training distribution's decoder explains each set"
                )
            index = check_index(index, x.shape[0], self.n_distributions)
        return x, context, x_mask, context_mask, index

    def noise(
        self,
        sets: int,
        elements: int,
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> dict[str, torch.Tensor]:
        """eps ~ N(0, I) for every reparameterized latent of ``sets`` sets of ``elements`` elements, by name.

        Drawn from ``generator`` (or torch's global one) in a fixed order, set latents (c [B, C]) before
        element latents (z [B, N, Z]): what `elbo` draws itself, so a training loop can draw it for a
        global batch and give each data-parallel rank its slice along B, like the data.
        """
        where = generator.device if generator is not None else device
        return {
            name: torch.randn(shape, generator=generator, dtype=dtype, device=where).to(device)
            for name, shape in self._noise_shapes(sets, elements).items()
        }

    def _check_noise(self, noise: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
        shapes = self._noise_shapes(x.shape[0], x.shape[1])
        fits = (
            isinstance(noise, dict)
            and set(noise) == set(shapes)
            and all(
                isinstance(noise[k], torch.Tensor) and tuple(noise[k].shape) == shape for k, shape in shapes.items()
            )
        )
        if not fits:
            got = (
                {k: tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__ for k, v in noise.items()}
                if isinstance(noise, dict)
                else type(noise).__name__
            )
            raise BadInputError(
                f"noise must map {sorted(shapes)} to tensors of shapes {shapes} (see "
                f"{type(self).__name__}.noise), got {got}"
            )
        return noise

    def elbo(
        self,
        x,
        context=None,
        index=None,
        *,
        x_mask=None,
        context_mask=None,
        generator: torch.Generator | None = None,
        noise: dict[str, torch.Tensor] | None = None,
    ) -> ElboTerms:
        """Per-distribution ELBO terms [B] with one reparameterized sample of every latent.

        The sample's noise is ``noise`` (as `noise` draws it for these B sets of N elements) or, when
        None, drawn from ``generator`` in the same order.
        """
        x, context, x_mask, context_mask, index = self._check(x, context, x_mask, context_mask, index, True)
        noise = (
            self.noise(x.shape[0], x.shape[1], generator, dtype=x.dtype, device=x.device)
            if noise is None
            else self._check_noise(noise, x)
        )
        cond = self._condition(x, context, context_mask, index, noise, sample=True)
        mu, logvar = self._posterior(x, cond)
        z = reparameterize(mu, logvar, eps=noise["z"])
        recon = self.log_px(x, self._decode(z, cond))  # log p(x | z, .)  [B, N]
        kl = gaussian_kl(mu, logvar, *self._prior(cond, mu))  # KL(q(z|.) || p(z|.))  [B, N]
        recon_b, kl_b = masked_mean(recon, x_mask, 1), masked_mean(kl, x_mask, 1)
        kl_global = cond.get("kl_global", torch.zeros_like(recon_b)) * self._global_weight(x_mask, x)
        return ElboTerms(recon_b - kl_b - kl_global, recon_b, kl_b, kl_global)

    def loss(self, x, context=None, index=None, **kwargs) -> torch.Tensor:
        """-ELBO averaged over the batch's distributions (the paper's mean over p_i of -ELBO)."""
        return -self.elbo(x, context, index, **kwargs).elbo.mean()

    @torch.no_grad()
    def encode(self, x, context=None, *, context_mask=None, index=None) -> torch.Tensor:
        """Posterior means E q(z | x, D) [B, N, Z] for any distribution, seen or new, with no gradient step.

        Latents of the set (Neural Statistician's c) are set to their posterior means.
        """
        was_training = self.training
        self.eval()
        try:
            x, context, _, context_mask, index = self._check(x, context, None, context_mask, index, False)
            cond = self._condition(x, context, context_mask, index, None, sample=False)
            return self._posterior(x, cond)[0]
        finally:
            self.train(was_training)

    @torch.no_grad()
    def log_likelihood(
        self,
        x,
        context=None,
        index=None,
        *,
        n_samples: int = 64,
        context_mask=None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Importance-sampled log p(x | D) [B, N] with K = n_samples draws of z ~ q (Burda et al. 2016).

        Set latents (c) are fixed at their posterior means, so for the Neural Statistician this
        estimates log p(x | c = E q(c|D)).
        """
        check_int("n_samples", n_samples, 1)
        x, context, _, context_mask, index = self._check(x, context, None, context_mask, index, True)
        cond = self._condition(x, context, context_mask, index, None, sample=False)
        mu, logvar = self._posterior(x, cond)
        p_mu, p_logvar = self._prior(cond, mu)
        p_mu = torch.zeros_like(mu) if p_mu is None else p_mu.expand_as(mu)
        p_logvar = torch.zeros_like(mu) if p_logvar is None else p_logvar.expand_as(mu)
        b, n = x.shape[:2]
        z = torch.stack([reparameterize(mu, logvar, generator) for _ in range(n_samples)])  # [K, B, N, Z]
        flat = z.permute(1, 0, 2, 3).reshape(b, n_samples * n, self.z_dim)
        params = self._decode(flat, cond).reshape(b, n_samples, n, -1).permute(1, 0, 2, 3)
        log_joint = self.log_px(x.expand(n_samples, -1, -1, -1), params) + gaussian_log_prob(z, p_mu, p_logvar)
        return importance_log_likelihood(log_joint, gaussian_log_prob(z, mu, logvar))
