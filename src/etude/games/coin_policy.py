"""Small coin-game policies batched over seeds: one flat parameter vector per seed.

Foerster et al., AAMAS 2018 (arXiv:1709.04326), Sec. 5.3 use a recurrent policy; here an MLP
sees the egocentric observation and, with `memory=True`, the last pick-up event, a memory-one
summary of the history like the IPD's last joint action (Sec. 4.2):
(I picked my colour, I picked the other's, the other picked its colour, the other picked mine).

Parameters are flat, theta [seeds, P], so that the learner rules of `etude.games.learners`
(naive, LOLA) apply to them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = ["MLPPolicy", "pick_memory"]

MEMORY = 4
"""Length of the last-pick feature."""


def pick_memory(previous: torch.Tensor, picks: torch.Tensor) -> torch.Tensor:
    """Last pick-up event [batch, 2, 4] from each agent's side, updated by picks [batch, 2, 2] of one step.

    picks[b, i, c] = 1 when agent i picked a coin of colour c; the feature keeps its value until
    the next step with a pick.
    """
    own = torch.stack([picks[:, 0, 0], picks[:, 1, 1]], dim=1)  # [batch, 2]: i picked colour i
    other = torch.stack([picks[:, 0, 1], picks[:, 1, 0]], dim=1)  # i picked the other's colour
    event = torch.stack([own, other, own.flip(1), other.flip(1)], dim=-1)  # [batch, 2, 4]
    happened = picks.flatten(1).sum(1, keepdim=True).unsqueeze(-1) > 0
    return torch.where(happened, event, previous)


@dataclass(frozen=True)
class MLPPolicy:
    """pi(a | x) = softmax(W2 relu(W1 x + b1) + b2), for x the observation (+ the last-pick feature).

    :param obs_dim: length of the flattened observation (4 n^2).
    :param hidden: width of the hidden layer.
    :param memory: append the 4 last-pick features to the input.
    """

    obs_dim: int
    hidden: int = 32
    memory: bool = True
    actions: int = 4

    def __post_init__(self) -> None:
        for name in ("obs_dim", "hidden", "actions"):
            value = getattr(self, name)
            check_int(name, value, 1)

    @property
    def input_dim(self) -> int:
        return self.obs_dim + (MEMORY if self.memory else 0)

    @property
    def size(self) -> int:
        """Number of parameters P per seed."""
        d, h, a = self.input_dim, self.hidden, self.actions
        return d * h + h + h * a + a

    def init(self, seeds: list[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """theta [seeds, 2, P]: He-scaled W1, W2 scaled by 0.1 (near-uniform start), zero biases."""
        d, h, a = self.input_dim, self.hidden, self.actions
        out = []
        for s in seeds:
            g = torch.Generator().manual_seed(int(s))
            agents = []
            for _ in range(2):
                w1 = torch.randn(d * h, generator=g) * (2.0 / d) ** 0.5
                w2 = torch.randn(h * a, generator=g) * 0.1 * (1.0 / h) ** 0.5
                agents.append(torch.cat([w1, torch.zeros(h), w2, torch.zeros(a)]))
            out.append(torch.stack(agents))
        return torch.stack(out).to(dtype)

    def inputs(self, obs: torch.Tensor, memory: torch.Tensor | None) -> torch.Tensor:
        """Policy inputs [batch, 2, D] from obs [batch, 2, 4, n, n] and the last-pick feature [batch, 2, 4]."""
        x = obs.flatten(2)
        if self.memory:
            if memory is None:
                raise BadInputError("this policy remembers the last pick: pass memory [batch, 2, 4]")
            x = torch.cat([x, memory.to(x.dtype)], dim=-1)
        return x

    def log_probs(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log pi(. | x) [seeds, ..., 4] for theta [seeds, P] and inputs x [seeds, ..., D]."""
        if theta.ndim != 2 or theta.shape[1] != self.size:
            raise BadInputError(f"theta must have shape [seeds, {self.size}], got {tuple(theta.shape)}")
        seeds, d, h, a = theta.shape[0], self.input_dim, self.hidden, self.actions
        lead = x.shape[1:-1]
        flat = x.reshape(seeds, -1, d).to(theta.dtype)  # [seeds, m, d]
        w1, b1, w2, b2 = torch.split(theta, [d * h, h, h * a, a], dim=1)
        hid = torch.relu(torch.baddbmm(b1[:, None], flat, w1.view(seeds, d, h)))
        logits = torch.baddbmm(b2[:, None], hid, w2.view(seeds, h, a))
        return F.log_softmax(logits, dim=-1).reshape(seeds, *lead, a)
