"""Naive Q-learning (NL-Q), a tournament entrant of the LOLA paper, against any learner, batched over seeds.

Foerster et al., AAMAS 2018 (arXiv:1709.04326), Sec. 5 (tournament; official entrants in
`lola/baselines.py`): a tabular Q-learner over the 5 memory-one states with epsilon-greedy play,
    Q(s, a) <- (1 - alpha_k) Q(s, a) + alpha_k (r + gamma max_a' Q(s', a')),
    alpha_k = 1 / (1 / alpha + k * decay) at its k-th update.
Its policy, P(C | s) = 1 - eps if C is greedy in s else eps, is what a gradient learner playing
against it differentiates through (as logits), as in the official tournament.
Each round both agents play one episode of `horizon` steps per seed; the Q-learner updates after
every step, a gradient learner once per round on the exact values.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from etude.errors import BadInputError
from etude.games.dice import sample_rollouts
from etude.games.learners import LEARNERS, exact_value_fn, learner_gradient, swap_view
from etude.games.matrix import MatrixGame
from etude.games.training import History, as_seed_list, exact_rewards, initial_theta
from etude.runtime.seeding import generator_seed
from etude.validation import check_int

__all__ = ["Q_LEARNER", "q_policy_logits", "q_update", "train_against_q"]

Q_LEARNER = "nl-q"


def q_policy_logits(q: torch.Tensor, eps: float) -> torch.Tensor:
    """Logits [seeds, 5] of P(C | s) of epsilon-greedy play on Q [seeds, 5, 2] (action 0 = C)."""
    greedy_c = q[..., 0] >= q[..., 1]
    p = torch.full(greedy_c.shape, eps, dtype=q.dtype).masked_fill(greedy_c, 1.0 - eps)
    return torch.log(p) - torch.log1p(-p)


def q_update(
    q: torch.Tensor,
    state: torch.Tensor,
    action: torch.Tensor,
    reward: torch.Tensor,
    next_state: torch.Tensor,
    alpha: float,
    gamma: float,
) -> torch.Tensor:
    """One Q-learning step for every seed: Q [seeds, 5, 2]; state, action, next_state [seeds]; reward [seeds]."""
    rows = torch.arange(q.shape[0])
    target = reward + gamma * q[rows, next_state].max(dim=-1).values
    q = q.clone()
    q[rows, state, action] = (1.0 - alpha) * q[rows, state, action] + alpha * target
    return q


def train_against_q(
    game: MatrixGame,
    learner1: str,
    learner2: str,
    rounds: int = 50,
    seeds: int | Sequence[int] = 50,
    lr: float = 1.0,
    opponent_lr: float = 1.0,
    *,
    horizon: int = 200,
    alpha: float = 0.01,
    decay: float = 1e-4,
    eps: float = 0.05,
) -> History:
    """Train a pair where one or both agents are NL-Q ('nl-q'); the others are gradient learners.

    Official tournament defaults: 50 rounds of 200-step episodes, alpha 0.01, decay 1e-4, eps 0.05.
    """
    names = (learner1, learner2)
    _check_pair(names, rounds, eps)
    seed_list = as_seed_list(seeds)
    n = len(seed_list)
    theta = initial_theta(seed_list)  # [seeds, 2, 5]: the gradient learners' logits
    q = _initial_q(seed_list)
    sampler = torch.Generator().manual_seed(generator_seed(seed_list[0] * 1_000_003 + n + 2))
    values = exact_value_fn(game)
    updates = 0
    history = torch.zeros(n, rounds + 1, 2, 5, dtype=torch.float64)

    def logits() -> list[torch.Tensor]:
        return [q_policy_logits(q[a], eps) if names[a] == Q_LEARNER else theta[:, a] for a in range(2)]

    history[:, 0] = torch.stack(logits(), dim=1)
    for r in range(rounds):
        l1, l2 = logits()
        new = _gradient_steps(names, values, l1, l2, lr, opponent_lr)
        rollouts = sample_rollouts(game, l1, l2, 1, horizon, sampler)
        actions = (rollouts.actions1[:, 0], rollouts.actions2[:, 0])  # [seeds, horizon] each
        updates = _q_episode(game, names, q, actions, updates, alpha=alpha, decay=decay)
        for a, value in enumerate(new):
            if value is not None:
                theta[:, a] = value
        history[:, r + 1] = torch.stack(logits(), dim=1)
    config = {"learners": list(names), "rounds": rounds, "seeds": seed_list, "horizon": horizon, "alpha": alpha}
    config |= {"decay": decay, "eps": eps, "lr": float(lr), "opponent_lr": float(opponent_lr), "gamma": game.gamma}
    return History(game.name, names, seed_list, exact_rewards(game, history), history, config)


def _check_pair(names: tuple[str, str], rounds: int, eps: float) -> None:
    """One-line errors for an unknown learner, a pair without NL-Q, negative rounds or eps outside (0, 0.5)."""
    for name in names:
        if name != Q_LEARNER and name not in LEARNERS:
            raise BadInputError(f"unknown learner {name!r}; expected one of {sorted(LEARNERS) + [Q_LEARNER]}")
    if Q_LEARNER not in names:
        raise BadInputError("train_against_q needs at least one 'nl-q' agent; use etude.games.train otherwise")
    check_int("rounds", rounds, 0)
    if not 0.0 < eps < 0.5:
        raise BadInputError(f"eps must be in (0, 0.5), got {eps!r}")


def _initial_q(seed_list: list[int]) -> list[torch.Tensor]:
    """Each agent's Q table [seeds, 5, 2], standard normal from its own generator (seed 2 s + agent)."""
    return [
        torch.stack(
            [
                torch.randn(5, 2, generator=torch.Generator().manual_seed(int(s) * 2 + a), dtype=torch.float64)
                for s in seed_list
            ]
        )
        for a in range(2)
    ]


def _gradient_steps(names, values, l1: torch.Tensor, l2: torch.Tensor, lr: float, opponent_lr: float) -> list:
    """The gradient learners' next logits ``l + lr * gradient`` (None for an NL-Q agent), on the exact values."""
    new: list[torch.Tensor | None] = [None, None]
    if names[0] != Q_LEARNER:
        new[0] = l1 + lr * learner_gradient(names[0], values, l1, l2, opponent_lr)
    if names[1] != Q_LEARNER:
        new[1] = l2 + lr * learner_gradient(names[1], swap_view(values), l2, l1, opponent_lr)
    return new


def _q_episode(
    game: MatrixGame, names, q: list[torch.Tensor], actions: tuple, updates: int, *, alpha: float, decay: float
) -> int:
    """Update the NL-Q agents' tables in ``q`` after every step of one episode; returns the update count after it.

    The state before step t is 0 at t = 0, else 1 + 2 own[t-1] + other[t-1]; the step size is alpha_k.
    """
    a1, a2 = actions
    n, horizon = a1.shape
    rewards_of = game.rewards().T.to(torch.float64)  # [4 joint, 2]
    for t in range(horizon):
        alpha_k = 1.0 / (1.0 / alpha + updates * decay)
        joint = 2 * a1[:, t] + a2[:, t]
        for agent, own, other in ((0, a1, a2), (1, a2, a1)):
            if names[agent] != Q_LEARNER:
                continue
            state = torch.zeros(n, dtype=torch.long) if t == 0 else 1 + 2 * own[:, t - 1] + other[:, t - 1]
            next_state = 1 + 2 * own[:, t] + other[:, t]
            q[agent] = q_update(q[agent], state, own[:, t], rewards_of[joint, agent], next_state, alpha_k, game.gamma)
        updates += 1
    return updates
