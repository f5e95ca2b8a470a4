"""Opponent modelling (LOLA-OM, Foerster et al., AAMAS 2018, arXiv:1709.04326, Sec. 4.3, Eq. 4.8).

An agent that cannot see the opponent's parameters estimates them from the opponent's observed
state-action pairs by maximum likelihood,
    theta_hat = argmax_theta sum_t log pi_theta(a_t^other | s_t^other)   (Eq. 4.8),
and uses theta_hat in place of theta_other in its (naive or LOLA) update. For memory-one policies
the likelihood separates over the 5 states, so the maximizer is the logit of the empirical
frequency of C in each state; a state seen only with C (or only with D) has its maximizer at
+-infinity and is clamped to +-`max_logit` (the constrained maximum), and an unvisited state keeps
the previous estimate (its likelihood is flat).
"""

from __future__ import annotations

import torch

from etude.errors import BadInputError
from etude.games.dice import Rollouts, sample_rollouts, state_indices
from etude.games.matrix import MatrixGame

__all__ = ["fit_opponent", "estimate_error"]


def fit_opponent(
    rollouts: Rollouts, agent: int, previous: torch.Tensor | None = None, max_logit: float = 10.0
) -> torch.Tensor:
    """Maximum-likelihood memory-one logits [seeds, 5] of `agent` (1 or 2) from its actions in `rollouts`.

    :param previous: [seeds, 5] estimate kept for states the rollouts never visit (default 0).
    :param max_logit: bound on |theta_hat|, where the unconstrained maximum is infinite.
    """
    if agent not in (1, 2):
        raise BadInputError(f"agent must be 1 or 2, got {agent!r}")
    own, other = (rollouts.actions1, rollouts.actions2) if agent == 1 else (rollouts.actions2, rollouts.actions1)
    seeds = own.shape[0]
    states = state_indices(own, other).reshape(seeds, -1)  # the agent's own view: its last action first
    cooperate = (own == 0).reshape(seeds, -1).double()
    visits = torch.zeros(seeds, 5, dtype=torch.float64).scatter_add_(1, states, torch.ones_like(cooperate))
    c = torch.zeros(seeds, 5, dtype=torch.float64).scatter_add_(1, states, cooperate)
    with torch.no_grad():
        logit = (torch.log(c) - torch.log(visits - c)).clamp(-max_logit, max_logit)  # logit(c / n)
    keep = torch.zeros(seeds, 5, dtype=torch.float64) if previous is None else previous.detach().double()
    return torch.where(visits > 0, logit, keep)


def estimate_error(
    game: MatrixGame,
    theta: torch.Tensor,
    episodes: list[int],
    horizon: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Error of the opponent estimate against the number of observed episodes: [len(episodes), seeds].

    For each n, agent 1 watches n fresh episodes of `horizon` steps of the pair theta [seeds, 2, 5]
    and fits agent 2; the error is the root mean square over the 5 states of
    P_hat(C | s) - P(C | s).
    """
    out = []
    for n in episodes:
        rollouts = sample_rollouts(game, theta[:, 0], theta[:, 1], n, horizon, generator)
        fitted = fit_opponent(rollouts, agent=2)
        out.append((torch.sigmoid(fitted) - torch.sigmoid(theta[:, 1].double())).pow(2).mean(-1).sqrt())
    return torch.stack(out)
