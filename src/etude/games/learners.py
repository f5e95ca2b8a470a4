"""Gradient rules of naive, LOLA and lookahead learners, written once for any value estimate.

Foerster et al., "Learning with Opponent-Learning Awareness", AAMAS 2018 (arXiv:1709.04326).
A learner sees `values(own, other) -> (V_own, V_other)`, unnormalized discounted returns
[seeds] that are differentiable in both parameter sets: the exact values of
`etude.games.matrix` or DiCE surrogates of `etude.games.dice`. Seeds are independent, so
differentiating the sum over seeds gives every seed's gradient at once.

Notation: delta (`lr`) is the agent's own step size, eta (`opponent_lr`) the step it assumes
for the opponent.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from etude.errors import BadInputError
from etude.games.matrix import MatrixGame, unnormalized_values

__all__ = [
    "LEARNERS",
    "ValueFn",
    "exact_value_fn",
    "swap_view",
    "learner_gradient",
    "naive_gradient",
    "lola_gradient",
    "lookahead_gradient",
]

ValueFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def exact_value_fn(game: MatrixGame) -> ValueFn:
    """`values(theta1, theta2) -> (V1, V2)`: the game's exact unnormalized values, [seeds] each."""

    def values(theta1: torch.Tensor, theta2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = unnormalized_values(game, theta1, theta2)
        return v[..., 0], v[..., 1]

    return values


def swap_view(values: ValueFn) -> ValueFn:
    """The same values seen from agent 2's side: view(theta2, theta1) = (V2, V1)."""

    def view(own: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v1, v2 = values(other, own)
        return v2, v1

    return view


def _leaf(theta: torch.Tensor) -> torch.Tensor:
    return theta.detach().requires_grad_(True)


def naive_gradient(values: ValueFn, own: torch.Tensor, other: torch.Tensor, opponent_lr: float) -> torch.Tensor:
    """Naive learner: grad_own V_own (Sec. 3.1); the opponent is treated as fixed."""
    own = _leaf(own)
    v_own, _ = values(own, other.detach())
    (grad,) = torch.autograd.grad(v_own.sum(), own)
    return grad


def lola_gradient(values: ValueFn, own: torch.Tensor, other: torch.Tensor, opponent_lr: float) -> torch.Tensor:
    """LOLA, Eq. (4.2) of the paper: grad_1 V1 + eta (grad_2 V1)^T grad_1 grad_2 V2.

    The first-order Taylor correction of V1(theta1, theta2 + eta grad_2 V2); as in the paper
    and the official code, grad_2 V1 is held constant (no derivative through it).
    """
    own, other = _leaf(own), _leaf(other)
    v_own, v_other = values(own, other)
    grad_own, grad_other_v_own = torch.autograd.grad(v_own.sum(), (own, other), retain_graph=True)
    (grad_other_v_other,) = torch.autograd.grad(v_other.sum(), other, create_graph=True)
    shaping = (grad_other_v_own.detach() * grad_other_v_other).sum()
    (correction,) = torch.autograd.grad(shaping, own)
    return grad_own + opponent_lr * correction


def lookahead_gradient(values: ValueFn, own: torch.Tensor, other: torch.Tensor, opponent_lr: float) -> torch.Tensor:
    """Lookahead (LA in Sec. 5): grad_1 V1(theta1, theta2 + eta grad_2 V2) with the opponent's step constant.

    The agent anticipates the opponent's naive step but, unlike LOLA, does not differentiate
    through it, so it cannot shape the opponent.
    """
    own_fixed, other = own.detach(), _leaf(other)
    _, v_other = values(own_fixed, other)
    (step,) = torch.autograd.grad(v_other.sum(), other)
    own = _leaf(own)
    v_own, _ = values(own, other.detach() + opponent_lr * step)
    (grad,) = torch.autograd.grad(v_own.sum(), own)
    return grad


LEARNERS: dict[str, Callable[[ValueFn, torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "naive": naive_gradient,
    "lola": lola_gradient,
    "lookahead": lookahead_gradient,
}
"""Learner name -> gradient rule. Every rule returns the ascent direction for its agent."""


def learner_gradient(
    name: str, values: ValueFn, own: torch.Tensor, other: torch.Tensor, opponent_lr: float
) -> torch.Tensor:
    """Ascent direction [seeds, 5] of learner `name` for the agent whose parameters are `own`."""
    if name not in LEARNERS:
        raise BadInputError(f"unknown learner {name!r}; expected one of {sorted(LEARNERS)}")
    return LEARNERS[name](values, own, other, opponent_lr)
