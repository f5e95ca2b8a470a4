"""The Variational Homoencoder: a Neural Statistician trained with the homoencoder bound.

Hewitt, Nye, Gane, Jaakkola, Tenenbaum, "The Variational Homoencoder", UAI 2018
(arXiv:1807.08919), Sec. 3, Eq. (5): each element x of a dataset X is explained through c
inferred from a small subset D of X (not containing x), and the KL on c is shared by the
whole dataset: log p(x) >= E_q(c|D)[log p(x | c)] - KL(q(c|D) || p(c)) / |X|.
Same networks as `NeuralStatistician`; only the weight of KL(c) and the context differ.
"""

from __future__ import annotations

import torch

from etude.errors import BadInputError
from etude.meta.statistician import NeuralStatistician
from etude.validation import check_int

__all__ = ["VariationalHomoencoder"]


class VariationalHomoencoder(NeuralStatistician):
    """Neural Statistician networks; ELBO with KL(q(c|D) || p(c)) / |X| for the full dataset size |X|.

    :param dataset_size: |X|, elements in each whole dataset (not in a minibatch).
    Other parameters as `NeuralStatistician`. The context D must be given explicitly.
    """

    x_is_context = False

    def __init__(
        self,
        x_dim: int,
        z_dim: int,
        c_dim: int = 16,
        hidden: int = 400,
        likelihood: str = "gaussian",
        dataset_size: int = 1000,
    ) -> None:
        super().__init__(x_dim, z_dim, c_dim, hidden, likelihood)
        check_int("dataset_size", dataset_size, 1)
        self.dataset_size = dataset_size

    def _condition(self, x, context, context_mask, index, noise, sample):
        if context is None:
            raise BadInputError("VariationalHomoencoder needs a context subset D [B, C, D], disjoint from x")
        return super()._condition(x, context, context_mask, index, noise, sample)

    def _global_weight(self, x_mask, x):
        return torch.full(x.shape[:1], 1.0 / self.dataset_size, dtype=x.dtype)
