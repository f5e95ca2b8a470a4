"""Sampled rollouts of iterated matrix games and DiCE surrogates for their values.

Foerster, Farquhar, Al-Shedivat, Rocktaschel, Xing, Whiteson, "DiCE: The Infinitely
Differentiable Monte Carlo Estimator", ICML 2018 (arXiv:1802.05098), Eq. (3) and Sec. 4
(LOLA-DiCE); the baseline is Mao et al., "A Baseline for Any Order Gradient Estimation in
Stochastic Computation Graphs", ICML 2019, Eq. (8).

The magic box is box(w) = exp(w - stop_grad(w)): it evaluates to 1 and its derivative is
box(w) dw. The surrogate L_i = sum_t gamma^t r_{i,t} box(sum_{t' <= t} log pi(a_t')) has, in
expectation, every order of derivative of the truncated value sum_{t<T} gamma^t E[r_{i,t}].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from etude.errors import BadInputError
from etude.games.matrix import MatrixGame, check_theta, transition_matrix

__all__ = [
    "Rollouts",
    "sample_rollouts",
    "rollout_log_probs",
    "magic_box",
    "DiceValues",
    "truncated_values",
    "discounted_rewards",
    "leave_one_out_baseline",
    "dice_objective",
]


@dataclass(frozen=True)
class Rollouts:
    """Sampled play: actions [seeds, batch, horizon] (0 = C, 1 = D) and rewards [seeds, batch, horizon, 2]."""

    actions1: torch.Tensor
    actions2: torch.Tensor
    rewards: torch.Tensor


def magic_box(w: torch.Tensor) -> torch.Tensor:
    """DiCE's magic box, Eq. (3): exp(w - stop_grad(w)), equal to 1 with derivative box(w) dw."""
    return torch.exp(w - w.detach())


def state_indices(own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Logit index [seeds, batch, horizon] of each step: 0 at t=0, then 1 + 2 own_{t-1} + other_{t-1}."""
    previous = 1 + 2 * own[..., :-1] + other[..., :-1]
    start = torch.zeros_like(own[..., :1])
    return torch.cat([start, previous], dim=-1)


def sample_rollouts(
    game: MatrixGame,
    theta1: torch.Tensor,
    theta2: torch.Tensor,
    batch: int,
    horizon: int,
    generator: torch.Generator | None = None,
) -> Rollouts:
    """Play `batch` episodes of `horizon` steps per seed with the memory-one policies theta [seeds, 5]."""
    if not isinstance(batch, int) or batch < 1:
        raise BadInputError(f"batch must be a positive int, got {batch!r}")
    if not isinstance(horizon, int) or horizon < 1:
        raise BadInputError(f"horizon must be a positive int, got {horizon!r}")
    p0, P = transition_matrix(theta1, theta2)
    p0, P = p0.detach(), P.detach()
    seeds = p0.shape[0]
    uniform = torch.rand(seeds, batch, horizon, generator=generator, dtype=torch.float64)
    joint = torch.empty(seeds, batch, horizon, dtype=torch.long)
    cdf0 = p0.double().cumsum(-1)  # [seeds, 4]
    cdf = P.double().cumsum(-1)  # [seeds, 4, 4]
    # Inverse-CDF sampling of the joint action; clamp guards a cumsum that ends below 1.
    first = cdf0.unsqueeze(1).expand(seeds, batch, 4).contiguous()
    joint[:, :, 0] = torch.searchsorted(first, uniform[:, :, :1].contiguous()).squeeze(-1).clamp(max=3)
    rows = torch.arange(seeds).unsqueeze(1)
    for t in range(1, horizon):
        row_cdf = cdf[rows, joint[:, :, t - 1]]  # [seeds, batch, 4]
        joint[:, :, t] = (
            torch.searchsorted(row_cdf.contiguous(), uniform[:, :, t : t + 1].contiguous()).squeeze(-1).clamp(max=3)
        )
    actions1, actions2 = joint // 2, joint % 2
    rewards = game.rewards().T.to(torch.float64)[joint]  # [seeds, batch, horizon, 2]
    return Rollouts(actions1, actions2, rewards)


def rollout_log_probs(
    theta1: torch.Tensor, theta2: torch.Tensor, rollouts: Rollouts
) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi_i(a_{i,t} | state_t) [seeds, batch, horizon] for both agents, differentiable in theta."""
    theta1, theta2 = check_theta(theta1, "theta1"), check_theta(theta2, "theta2")
    t1 = theta1 if theta1.ndim == 2 else theta1.unsqueeze(0)
    t2 = theta2 if theta2.ndim == 2 else theta2.unsqueeze(0)
    a1, a2 = rollouts.actions1, rollouts.actions2
    seeds, batch, horizon = a1.shape
    if t1.shape[0] != seeds or t2.shape[0] != seeds:
        raise BadInputError(f"rollouts have {seeds} seeds but theta1/theta2 have {t1.shape[0]}/{t2.shape[0]}")

    def log_pi(theta: torch.Tensor, own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        logits = torch.gather(theta, 1, state_indices(own, other).reshape(seeds, -1)).reshape(seeds, batch, horizon)
        # log sigmoid(+l) for C (0), log sigmoid(-l) for D (1)
        return F.logsigmoid(logits * (1 - 2 * own).to(logits.dtype))

    return log_pi(t1, a1, a2), log_pi(t2, a2, a1)


class DiceValues:
    """DiCE surrogates of both agents' unnormalized values on fixed rollouts.

    Called with the parameters that generated the rollouts, `values(theta1, theta2)` returns
    [seeds, 2] whose derivatives of any order are unbiased estimates of those of the truncated
    discounted return; with `baseline=True` a leave-one-out mean return per step is subtracted
    of the return to go from each step (Mao et al. 2019, Eq. 8), which keeps every order
    unbiased and cuts the variance.
    """

    def __init__(self, game: MatrixGame, rollouts: Rollouts, baseline: bool = True) -> None:
        self.rollouts = rollouts
        self.discounted = discounted_rewards(rollouts.rewards, game.gamma)  # [seeds, batch, horizon, 2]
        self.baseline = leave_one_out_baseline(self.discounted) if baseline else None

    def __call__(self, theta1: torch.Tensor, theta2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp1, logp2 = rollout_log_probs(theta1, theta2, self.rollouts)
        return dice_objective(logp1, logp2, self.discounted, self.baseline)


def discounted_rewards(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """gamma^t r_{i,t} for rewards [seeds, batch, horizon, 2]."""
    horizon = rewards.shape[2]
    discount = gamma ** torch.arange(horizon, dtype=rewards.dtype, device=rewards.device)
    return rewards * discount[:, None]


def leave_one_out_baseline(discounted: torch.Tensor) -> torch.Tensor | None:
    """b_t [seeds, batch, horizon, 2]: leave-one-out batch mean of the discounted return to go
    sum_{t' >= t} gamma^t' r_t' (Mao et al. 2019, Eq. 8); None for a batch of one episode."""
    batch = discounted.shape[1]
    if batch < 2:
        return None
    to_go = discounted.flip(2).cumsum(2).flip(2)
    total = to_go.sum(dim=1, keepdim=True)
    return (total - to_go) / (batch - 1)


def dice_objective(
    logp1: torch.Tensor, logp2: torch.Tensor, discounted: torch.Tensor, baseline: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """DiCE surrogates (V1, V2) [seeds] of both agents from log pi_i(a_t) [seeds, batch, horizon].

    L_i = mean_batch sum_t box(sum_{t'<=t} log pi_1 + log pi_2) gamma^t r_{i,t}
    (DiCE, Eq. 3 and Sec. 4), plus sum_t (1 - box(log pi_t)) box(deps_{<t}) b_t with a baseline.
    """
    step = (logp1 + logp2).unsqueeze(-1)  # [seeds, batch, horizon, 1]
    dependencies = step.cumsum(dim=2)
    surrogate = (magic_box(dependencies) * discounted).sum(dim=2)
    if baseline is not None:
        before = F.pad(dependencies[:, :, :-1], (0, 0, 1, 0))
        correction = ((1.0 - magic_box(step)) * magic_box(before) * baseline).sum(dim=2)
        surrogate = surrogate + correction
    values = surrogate.mean(dim=1)  # [seeds, 2]
    return values[:, 0], values[:, 1]


def truncated_values(game: MatrixGame, theta1: torch.Tensor, theta2: torch.Tensor, horizon: int) -> torch.Tensor:
    """Exact sum_{t<T} gamma^t E[r_t] [seeds, 2] by propagating the state distribution T steps."""
    p0, P = transition_matrix(theta1, theta2)
    r = game.rewards().to(P.dtype).T  # [4, 2]
    dist, total = p0, torch.zeros_like(p0 @ r)
    for t in range(horizon):
        total = total + game.gamma**t * dist @ r
        dist = torch.einsum("bs,bst->bt", dist, P)
    return total
