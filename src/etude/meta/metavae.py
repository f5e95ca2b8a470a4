"""MetaVAE: meta-amortized inference over a family of distributions.

Wu, Choi, Goodman, Ermon, "Meta-Amortized Variational Inference and Learning", AAAI 2020
(arXiv:1902.01950), Sec. 3.2-3.3. One inference network serves every distribution p_i of a
family: q(z | x, s(D_i)) reads the element x and a summary s(D_i) = 1/|D_i| sum h(x') of a
context set from p_i; each training distribution has its own decoder p_i(x | z); the prior is
N(0, I). Objective, Eq. (4): mean over i of ELBO_i. A new distribution is encoded with a context
set and no gradient step (`encode`). Official MNIST config: z 40, hidden 400, context 10, Adam 2e-4.
Notation: s = `summary`, D_i = `context`, index = i.
"""

from __future__ import annotations

import torch

from etude.errors import BadInputError
from etude.meta.base import SetModel
from etude.meta.layers import PerDistributionMLP, SetSummary, mlp
from etude.validation import check_int

__all__ = ["MetaVAE"]


class MetaVAE(SetModel):
    """q(z | x, s(D)), one decoder p_i(x | z) per training distribution, p(z) = N(0, I).

    :param x_dim: D, data dimensions.
    :param z_dim: Z, latent dimensions.
    :param n_distributions: M, training distributions (one decoder each).
    :param hidden: H, hidden units of every MLP.
    :param summary_dim: S, size of s(D) (defaults to `hidden`).
    :param likelihood: 'gaussian' (learned diagonal variance) or 'bernoulli'.
    """

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        n_distributions: int,
        hidden: int = 400,
        summary_dim: int | None = None,
        likelihood: str = "gaussian",
    ) -> None:
        super().__init__(x_dim, z_dim, likelihood)
        self.n_distributions = check_int("n_distributions", n_distributions, 1)
        hidden = check_int("hidden", hidden, 1)
        summary_dim = check_int("summary_dim", summary_dim if summary_dim is not None else hidden, 1)
        self.summary = SetSummary(x_dim, hidden, summary_dim)
        self.encoder = mlp([x_dim + summary_dim, hidden, hidden, 2 * z_dim])  # q(z | [x, s(D)])
        self.decoders = PerDistributionMLP(n_distributions, [z_dim, hidden, hidden, self._out_dim()])  # p_i(x | z)

    def _condition(self, x, context, context_mask, index, noise, sample):
        if context is None:
            raise BadInputError("MetaVAE needs a context set [B, C, D] drawn from each distribution")
        return {"s": self.summary(context, context_mask), "index": index}

    def _posterior(self, x, cond):
        s = cond["s"].unsqueeze(1).expand(-1, x.shape[1], -1)
        mu, logvar = self.encoder(torch.cat([x, s], dim=-1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-10.0, 6.0)

    def _decode(self, z, cond):
        return self.decoders(z, cond["index"])
