"""The plain VAE baseline behind the MetaVAE interface.

Kingma & Welling, ICLR 2014 (arXiv:1312.6114): q(z | x) sees only the element, never the
context set, p(z) = N(0, I). With `shared_encoder=True` one encoder serves every distribution
(the amortized baseline of Wu et al. 2020, Sec. 5); with `False` each distribution has its own
encoder and decoder, i.e. M independent VAEs trained in one batch (a VAE fitted per dataset).
"""

from __future__ import annotations

from etude.errors import BadInputError
from etude.meta.base import SetModel
from etude.meta.layers import PerDistributionMLP, mlp
from etude.validation import check_int

__all__ = ["VAE"]


class VAE(SetModel):
    """q(z | x), one decoder p_i(x | z) per distribution, p(z) = N(0, I); `context` is ignored.

    :param x_dim: D. :param z_dim: Z. :param n_distributions: M decoders.
    :param hidden: H. :param likelihood: 'gaussian' or 'bernoulli'.
    :param shared_encoder: one q(z | x) for all distributions (True) or one per distribution.
    """

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        n_distributions: int,
        hidden: int = 400,
        likelihood: str = "gaussian",
        shared_encoder: bool = True,
    ) -> None:
        super().__init__(x_dim, z_dim, likelihood)
        self.n_distributions = check_int("n_distributions", n_distributions, 1)
        hidden = check_int("hidden", hidden, 1)
        if not isinstance(shared_encoder, bool):
            raise BadInputError(f"shared_encoder must be True or False, got {shared_encoder!r}")
        self.shared_encoder = shared_encoder
        sizes = [x_dim, hidden, hidden, 2 * z_dim]
        self.encoder = mlp(sizes) if shared_encoder else PerDistributionMLP(n_distributions, sizes)
        self.decoders = PerDistributionMLP(n_distributions, [z_dim, hidden, hidden, self._out_dim()])

    def _condition(self, x, context, context_mask, index, noise, sample):
        if not self.shared_encoder and index is None:
            raise BadInputError("a VAE with one encoder per distribution needs index [B] in encode()")
        return {"index": index}

    def _check(self, x, context, x_mask, context_mask, index, need_index):
        return super()._check(
            x, context, x_mask, context_mask, index, need_index or (not self.shared_encoder and index is not None)
        )

    def _posterior(self, x, cond):
        out = self.encoder(x) if self.shared_encoder else self.encoder(x, cond["index"])
        mu, logvar = out.chunk(2, dim=-1)
        return mu, logvar.clamp(-10.0, 6.0)

    def _decode(self, z, cond):
        return self.decoders(z, cond["index"])
