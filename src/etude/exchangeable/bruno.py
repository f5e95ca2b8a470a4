"""BRUNO: a Real NVP flow whose latent dimensions are independent exchangeable processes.

Korshunova et al., "BRUNO: A Deep Recurrent Model for Exchangeable Data", NeurIPS 2018
(arXiv:1802.07535), Sec. 3-5. With z = f(x) (f bijective, dequantized images -> R^D):

    log p(x_n | x_<n) = log p_process(z_n | z_<n) + log|det df/dx (x_n)|        (change of variables)

Few-shot classification picks the class whose support set gives the query the highest predictive
density; the set anomaly score is log p(z_n | z_<n) - log p_prior(z_n) (Sec. 5).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from etude.errors import BadInputError
from etude.exchangeable.processes import ExchangeableProcess, GaussianProcess, StudentTProcess
from etude.flows import Bijection, DenseRealNVP, Flatten, FlowSequence, LogitTransform, RealNVP
from etude.validation import check_int

__all__ = ["FLOWS", "PROCESSES", "Bruno"]

FLOWS = ("realnvp", "dense", "none")
PROCESSES = ("tp", "gp")


class Bruno(nn.Module):
    """Exchangeable sequence model: ``flow`` maps an example [*shape] to z [D]; ``process`` models z.

    Shapes: B sequences, n elements, D = prod(shape) latent dimensions; every log-density below is
    in data space (it includes the flow's log-det), in nats.
    """

    def __init__(self, flow: Bijection, process: ExchangeableProcess, shape: tuple[int, ...]):
        super().__init__()
        if not isinstance(flow, Bijection):
            raise BadInputError(f"flow must be an etude.flows.Bijection, got {type(flow).__name__}")
        if not isinstance(process, ExchangeableProcess):
            raise BadInputError(f"process must be a StudentTProcess or GaussianProcess, got {type(process).__name__}")
        self.shape = tuple(shape)
        self.dim = math.prod(self.shape)
        if process.dim != self.dim:
            raise BadInputError(f"process.dim must equal prod(shape) = {self.dim}, got {process.dim}")
        self.flow, self.process = flow, process

    @classmethod
    def build(
        cls,
        shape: tuple[int, int, int] = (1, 8, 8),
        levels: int = 17,
        flow: str = "realnvp",
        process: str = "tp",
        alpha: float = 0.05,
        hidden: int = 32,
        blocks: int = 1,
        scales: int = 2,
        layers: int = 6,
        nu: float = 1000.0,
        var: float = 1.0,
        corr: float = 0.1,
    ) -> Bruno:
        """The paper's pipeline: logit(alpha/2 + (1-alpha) x/levels), a flow, a TP or GP per latent dim.

        :param flow: 'realnvp' (multi-scale conv), 'dense' (``layers`` dense couplings) or 'none'.
        :param process: 'tp' (Student-t, initial nu) or 'gp' (Gaussian).
        """
        if flow not in FLOWS:
            raise BadInputError(f"unknown flow {flow!r}; expected one of {list(FLOWS)}")
        if process not in PROCESSES:
            raise BadInputError(f"unknown process {process!r}; expected one of {list(PROCESSES)}")
        body: Bijection
        if flow == "realnvp":
            body = RealNVP(shape, hidden=hidden, blocks=blocks, scales=scales)
        elif flow == "dense":
            body = DenseRealNVP(tuple(shape), hidden=hidden, layers=layers)
        else:
            body = Flatten(tuple(shape))
        dim = math.prod(shape)
        proc = (
            StudentTProcess(dim, nu=nu, var=var, corr=corr)
            if process == "tp"
            else GaussianProcess(dim, var=var, corr=corr)
        )
        return cls(FlowSequence([LogitTransform(levels, alpha), body]), proc, tuple(shape))

    def _check(self, name: str, x: object, lead: int) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise BadInputError(f"{name} must be a floating-point tensor, got {type(x).__name__}")
        if x.dim() != lead + len(self.shape) or tuple(x.shape[lead:]) != self.shape:
            dims = ", ".join(["."] * lead + [str(s) for s in self.shape])
            raise BadInputError(f"{name}: expected shape [{dims}], found {list(x.shape)}")
        return x

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [..., *shape] -> z [..., D] and log|det dz/dx| [...]."""
        lead = x.shape[: x.dim() - len(self.shape)]
        z, log_det = self.flow(x.reshape(-1, *self.shape))
        return z.reshape(*lead, self.dim), log_det.reshape(lead)

    def decode(self, z: Tensor) -> Tensor:
        """z [..., D] -> x [..., *shape] (the flow's inverse)."""
        lead = z.shape[:-1]
        return self.flow.inverse(z.reshape(-1, self.dim)).reshape(*lead, *self.shape)

    def sequence_log_prob(self, x: Tensor) -> Tensor:
        """log p(x_i | x_<i) for every position: x [B, n, *shape] -> [B, n]."""
        z, log_det = self.encode(self._check("x", x, 2))
        return self.process.sequence_log_prob(z) + log_det

    def forward(self, x: Tensor) -> Tensor:
        """``sequence_log_prob``: calling the model (as DDP and Fabric's precision do) gives [B, n]."""
        return self.sequence_log_prob(x)

    def bits_per_dim(self, x: Tensor) -> Tensor:
        """-log2 p(x_i | x_<i) / D for every position: [B, n]."""
        return -self.sequence_log_prob(x) / (self.dim * math.log(2))

    def loss(self, x: Tensor) -> Tensor:
        """Training loss: mean over sequences and positions of -log p(x_i | x_<i), per dimension (nats)."""
        return -self.sequence_log_prob(x).mean() / self.dim

    def conditional_log_prob(self, context: Tensor, query: Tensor) -> Tensor:
        """log p(query_q | context) for each query: context [B, n, *shape], query [B, q, *shape] -> [B, q]."""
        zc, _ = self.encode(self._check("context", context, 2))
        zq, ld = self.encode(self._check("query", query, 2))
        if zc.shape[0] != zq.shape[0]:
            raise BadInputError(f"context and query need the same batch size, got {zc.shape[0]} and {zq.shape[0]}")
        return self.process.conditional_log_prob(zc, zq) + ld

    def classify(self, support: Tensor, query: Tensor) -> Tensor:
        """Few-shot scores log p(query | support of class c): support [E, ways, shots, *shape],
        query [E, q, *shape] -> [E, q, ways]; the prediction is the argmax over ways."""
        support = self._check("support", support, 3)
        query = self._check("query", query, 2)
        e, ways, shots = support.shape[:3]
        if query.shape[0] != e:
            raise BadInputError(f"query: expected {e} episodes, found {query.shape[0]}")
        q = query.shape[1]
        context = support.reshape(e * ways, shots, *self.shape)
        queries = query.unsqueeze(1).expand(e, ways, *query.shape[1:]).reshape(e * ways, q, *self.shape)
        return self.conditional_log_prob(context, queries).reshape(e, ways, q).transpose(1, 2)

    def anomaly_scores(self, x: Tensor) -> Tensor:
        """log p(z_i | z_<i) - log p_prior(z_i) for every position: x [B, n, *shape] -> [B, n]."""
        z, _ = self.encode(self._check("x", x, 2))
        return self.process.sequence_log_prob(z) - self.process.prior_log_prob(z)

    @torch.no_grad()
    def sample(self, context: Tensor | None, num: int, generator: torch.Generator | None = None) -> Tensor:
        """num draws from p(x | context): context [n, *shape] or None (the prior) -> [num, *shape].

        The process's streaming state is reset, fed the context's latents, and left there. Through
        the logit preprocessing samples can fall up to levels * alpha / (2 - 2 alpha) outside
        [0, levels); clamp them for display.
        """
        check_int("num", num, 1)
        self.process.reset()
        if context is not None:
            z, _ = self.encode(self._check("context", context, 1))
            for zi in z:
                self.process.update(zi)
        return self.decode(self.process.sample(num, generator))
