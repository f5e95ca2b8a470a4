"""Iterated 2x2 matrix games with memory-one policies and their exact discounted values.

Foerster et al., "Learning with Opponent-Learning Awareness", AAMAS 2018 (arXiv:1709.04326),
Sec. 4.2: each agent has 5 logits theta = (start, CC, CD, DC, DD) of P(cooperate); the state
is the pair of last actions seen from the agent's own side (own action first). The play is a
Markov chain over the joint states (CC, CD, DC, DD) seen from agent 1's side, so agent 2's
logits for CD and DC swap places when the chain is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from etude.errors import BadInputError
from etude.validation import check_number

__all__ = [
    "MatrixGame",
    "ipd",
    "matching_pennies",
    "exact_values",
    "unnormalized_values",
    "joint_probabilities",
    "transition_matrix",
    "policy_logits",
    "STATES",
]

STATES = ("start", "CC", "CD", "DC", "DD")
"""Names of the 5 logits, in order; CD means "I cooperated, the other defected"."""

# Agent 2 sees the joint state (a1, a2) as (a2, a1): its CD is agent 1's DC.
_SWAP_VIEW = [0, 1, 3, 2, 4]


@dataclass(frozen=True)
class MatrixGame:
    """A 2x2 iterated game: payoff_i[a1, a2] is agent i's reward, actions 0 = C, 1 = D.

    :param payoff1: [2, 2] rewards of agent 1 (row player).
    :param payoff2: [2, 2] rewards of agent 2 (column player), indexed by (a1, a2) as well.
    :param gamma: discount factor in (0, 1).
    :param name: a label for tables and plots.
    """

    payoff1: torch.Tensor
    payoff2: torch.Tensor
    gamma: float
    name: str = "game"

    def __post_init__(self) -> None:
        p1 = _as_payoff(self.payoff1, "payoff1")
        p2 = _as_payoff(self.payoff2, "payoff2")
        object.__setattr__(self, "payoff1", p1)
        object.__setattr__(self, "payoff2", p2)
        gamma = check_number("gamma", self.gamma, 0, 1, low_open=True, high_open=True)
        object.__setattr__(self, "gamma", gamma)

    def rewards(self) -> torch.Tensor:
        """Rewards [2, 4] of agents 1 and 2 on entering joint states (CC, CD, DC, DD)."""
        return torch.stack([self.payoff1.reshape(4), self.payoff2.reshape(4)])


def _as_payoff(value: object, name: str) -> torch.Tensor:
    try:
        tensor = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise BadInputError(f"{name} must be a 2x2 array of numbers, got {value!r}") from exc
    if tensor.shape != (2, 2):
        raise BadInputError(f"{name} must have shape (2, 2), got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise BadInputError(f"{name} must be finite, got {tensor.tolist()}")
    return tensor


def ipd(gamma: float = 0.96) -> MatrixGame:
    """The iterated prisoner's dilemma of the paper: CC -1, CD -3, DC 0, DD -2 (row player)."""
    payoff1 = torch.tensor([[-1.0, -3.0], [0.0, -2.0]])
    return MatrixGame(payoff1, payoff1.T.clone(), gamma, name="IPD")


def matching_pennies(gamma: float = 0.9) -> MatrixGame:
    """Iterated matching pennies: agent 1 gets +1 when the actions match, agent 2 gets the negative.

    The Nash equilibrium plays each action with probability 1/2 in every state. (The official
    script gives both agents the same reward; that is a bug and is not copied here.)
    """
    payoff1 = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    return MatrixGame(payoff1, -payoff1, gamma, name="matching pennies")


def check_theta(theta: torch.Tensor, name: str) -> torch.Tensor:
    """``theta`` when it is a tensor of 5 logits, [5] or [seeds, 5]; else BadInputError naming ``name``."""
    if not isinstance(theta, torch.Tensor):
        raise BadInputError(f"{name} must be a torch.Tensor of 5 logits, got {type(theta).__name__}")
    if theta.ndim not in (1, 2) or theta.shape[-1] != 5:
        raise BadInputError(
            f"{name} must have shape [5] or [seeds, 5] (logits of start, CC, CD, DC, DD), got {tuple(theta.shape)}"
        )
    if not theta.is_floating_point():
        raise BadInputError(f"{name} must be a floating-point tensor, got {theta.dtype}")
    if not bool(torch.isfinite(theta).all()):
        raise BadInputError(f"{name} contains NaN or infinite logits: {theta.detach().tolist()}")
    return theta


def joint_probabilities(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """Distribution over joint actions (CC, CD, DC, DD) from P(C) of each agent: [..., 4]."""
    q1, q2 = 1.0 - p1, 1.0 - p2
    return torch.stack([p1 * p2, p1 * q2, q1 * p2, q1 * q2], dim=-1)


def transition_matrix(theta1: torch.Tensor, theta2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial distribution p0 [seeds, 4] and transition matrix P [seeds, 4, 4] of the joint chain.

    P[s, s'] = P(joint actions s' | last joint actions s), with both agents acting independently.
    """
    theta1 = check_theta(theta1, "theta1")
    theta2 = check_theta(theta2, "theta2")
    t1 = theta1 if theta1.ndim == 2 else theta1.unsqueeze(0)
    t2 = theta2 if theta2.ndim == 2 else theta2.unsqueeze(0)
    if t1.shape[0] != t2.shape[0]:
        raise BadInputError(
            f"theta1 and theta2 must have the same number of seeds, got {t1.shape[0]} and {t2.shape[0]}"
        )
    p1 = torch.sigmoid(t1)
    p2 = torch.sigmoid(t2[:, _SWAP_VIEW])
    joint = joint_probabilities(p1, p2)  # [seeds, 5, 4]: row 0 from the start, rows 1..4 from CC..DD
    return joint[:, 0], joint[:, 1:]


def unnormalized_values(game: MatrixGame, theta1: torch.Tensor, theta2: torch.Tensor) -> torch.Tensor:
    """V_i = p0^T (I - gamma P)^-1 r_i, the discounted sum of rewards (Sec. 4.2): [seeds, 2] or [2].

    This is the value the official code differentiates; it is about 1/(1-gamma) times the
    per-step reward.
    """
    batched = theta1.ndim == 2 if isinstance(theta1, torch.Tensor) else False
    p0, P = transition_matrix(theta1, theta2)
    dtype = torch.promote_types(p0.dtype, torch.float32)
    p0, P = p0.to(dtype), P.to(dtype)
    eye = torch.eye(4, dtype=dtype, device=P.device)
    r = game.rewards().to(dtype=dtype, device=P.device).T  # [4, 2]
    # Solve (I - gamma P) x = r for both agents' rewards at once: x [seeds, 4, 2]
    x = torch.linalg.solve(eye - game.gamma * P, r.expand(P.shape[0], 4, 2))
    values = torch.einsum("bs,bsk->bk", p0, x)
    return values if batched else values.squeeze(0)


def exact_values(game: MatrixGame, theta1: torch.Tensor, theta2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Discounted average reward per step, (1 - gamma) p0^T (I - gamma P)^-1 r_i, for both agents.

    :param theta1: [5] or [seeds, 5] logits of agent 1 (start, CC, CD, DC, DD).
    :param theta2: same shape, agent 2's logits from its own point of view.
    :returns: (v1, v2), each a scalar or [seeds]; differentiable in both thetas.
    """
    values = (1.0 - game.gamma) * unnormalized_values(game, theta1, theta2)
    return values[..., 0], values[..., 1]


def policy_logits(name: str, confidence: float = 10.0) -> torch.Tensor:
    """Logits [5] of a named memory-one policy: 'cooperate', 'defect', 'tft' (tit for tat).

    `confidence` is the logit magnitude; sigmoid(10) = 0.99995, close to deterministic.
    """
    table = {
        "cooperate": [1, 1, 1, 1, 1],
        "defect": [-1, -1, -1, -1, -1],
        # TFT: cooperate first, then copy the other's last action (the second letter of the state).
        "tft": [1, 1, -1, 1, -1],
    }
    if name not in table:
        raise BadInputError(f"unknown policy {name!r}; expected one of {sorted(table)}")
    return confidence * torch.tensor(table[name], dtype=torch.float64)
