"""The Neural Statistician: a latent c per dataset and a latent z per element.

Edwards & Storkey, "Towards a Neural Statistician", ICLR 2017 (arXiv:1606.02185), Sec. 3:
q(c | D) from a mean-pooled set encoder, q(z | x, c), p(z | c), one shared decoder p(x | z, c),
p(c) = N(0, I). Per set X (Eq. 6 divided by |X|):
ELBO = mean_{x in X}[E log p(x | z, c) - KL(q(z|x,c) || p(z|c))] - KL(q(c|D) || p(c)) / |X|.
Without an explicit context the set X is its own context, D = X, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from etude.meta.base import SetModel
from etude.meta.elbo import gaussian_kl, reparameterize
from etude.meta.layers import SetSummary, mlp
from etude.validation import check_int

__all__ = ["NeuralStatistician"]


class NeuralStatistician(SetModel):
    """q(c | D), q(z | x, c), p(z | c), p(x | z, c); `index` is not needed (c replaces p_i).

    :param x_dim: D. :param z_dim: Z. :param c_dim: size of the set latent c.
    :param hidden: H. :param likelihood: 'gaussian' or 'bernoulli'.
    """

    needs_index = False
    x_is_context = True

    def __init__(
        self, x_dim: int, z_dim: int, c_dim: int = 16, hidden: int = 400, likelihood: str = "gaussian"
    ) -> None:
        super().__init__(x_dim, z_dim, likelihood)
        self.c_dim = check_int("c_dim", c_dim, 1)
        hidden = check_int("hidden", hidden, 1)
        self.summary = SetSummary(x_dim, hidden, hidden)
        self.c_head = nn.Linear(hidden, 2 * c_dim)  # q(c | D)
        self.encoder = mlp([x_dim + c_dim, hidden, hidden, 2 * z_dim])  # q(z | x, c)
        self.prior_net = mlp([c_dim, hidden, 2 * z_dim])  # p(z | c)
        self.decoder = mlp([z_dim + c_dim, hidden, hidden, self._out_dim()])  # p(x | z, c)

    def _condition(self, x, context, context_mask, index, noise, sample):
        mu_c, logvar_c = self.c_head(self.summary(context, context_mask)).chunk(2, dim=-1)
        logvar_c = logvar_c.clamp(-10.0, 6.0)
        c = reparameterize(mu_c, logvar_c, eps=noise["c"]) if sample else mu_c
        return {"c": c, "kl_global": gaussian_kl(mu_c, logvar_c)}

    def _noise_shapes(self, sets, elements):
        return {"c": (sets, self.c_dim), **super()._noise_shapes(sets, elements)}  # c is drawn before z

    @staticmethod
    def _with_c(h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, c.unsqueeze(1).expand(-1, h.shape[1], -1)], dim=-1)

    def _posterior(self, x, cond):
        mu, logvar = self.encoder(self._with_c(x, cond["c"])).chunk(2, dim=-1)
        return mu, logvar.clamp(-10.0, 6.0)

    def _prior(self, cond, like):
        mu, logvar = self.prior_net(cond["c"]).chunk(2, dim=-1)
        return mu.unsqueeze(1), logvar.clamp(-10.0, 6.0).unsqueeze(1)

    def _decode(self, z, cond):
        return self.decoder(self._with_c(z, cond["c"]))
