"""Exact values of iterated matrix games: closed forms, Monte Carlo rollouts, batching, bad input."""

import pytest
import torch

from etude.errors import BadInputError
from etude.games import (
    MatrixGame,
    exact_values,
    initial_theta,
    ipd,
    matching_pennies,
    policy_logits,
    sample_rollouts,
    transition_matrix,
)

SURE = 40.0  # sigmoid(40) = 1 - 4e-18: deterministic policies


@pytest.mark.parametrize(
    "policy1, policy2, expected",
    [
        ("tft", "tft", (-1.0, -1.0)),
        ("cooperate", "defect", (-3.0, 0.0)),
        ("defect", "cooperate", (0.0, -3.0)),
        ("defect", "defect", (-2.0, -2.0)),
        ("tft", "defect", (-2.04, -1.92)),  # -3 once, then -2: 0.04 * -3 + 0.96 * -2
        ("defect", "tft", (-1.92, -2.04)),
    ],
)
def test_sanity_values_at_gamma_096(policy1, policy2, expected):
    v1, v2 = exact_values(ipd(0.96), policy_logits(policy1, SURE), policy_logits(policy2, SURE))
    assert float(v1) == pytest.approx(expected[0], abs=1e-9)
    assert float(v2) == pytest.approx(expected[1], abs=1e-9)


def test_tft_against_alternating_closed_form():
    # TFT vs a "do the opposite of what you did" policy is periodic; compare with the geometric sum.
    game = ipd(0.9)
    # agent 2 starts with D, then plays C after own D and D after own C (own action = first letter)
    alternate = SURE * torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0], dtype=torch.float64)
    v1, v2 = exact_values(game, policy_logits("tft", SURE), alternate)
    # joint play: (C,D), (D,C), (C,D), ... rewards for agent 1: -3, 0, -3, 0, ...
    g = 0.9
    assert float(v1) == pytest.approx((1 - g) * (-3.0) / (1 - g**2), abs=1e-9)
    assert float(v2) == pytest.approx((1 - g) * (0.0 + g * -3.0) / (1 - g**2), abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("make_game", [ipd, matching_pennies])
def test_exact_values_match_monte_carlo_rollouts(seed, make_game):
    game = make_game()
    theta = initial_theta([seed])
    horizon = 400  # gamma^400 < 1e-7 for gamma <= 0.96
    rollouts = sample_rollouts(game, theta[:, 0], theta[:, 1], 4000, horizon, torch.Generator().manual_seed(seed))
    discount = game.gamma ** torch.arange(horizon, dtype=torch.float64)
    returns = (1 - game.gamma) * (rollouts.rewards * discount[:, None]).sum(dim=2)[0]  # [batch, 2]
    mean, se = returns.mean(0), returns.std(0) / returns.shape[0] ** 0.5
    v1, v2 = exact_values(game, theta[:, 0], theta[:, 1])
    exact = torch.stack([v1, v2], dim=-1)[0]
    assert torch.all((mean - exact).abs() < 4 * se + 1e-6), (mean, exact, se)


def test_batched_equals_per_seed_and_differentiable():
    game = ipd()
    theta = initial_theta(range(7)).requires_grad_(True)
    v1, v2 = exact_values(game, theta[:, 0], theta[:, 1])
    for s in range(7):
        w1, w2 = exact_values(game, theta[s, 0], theta[s, 1])
        assert torch.allclose(v1[s], w1, atol=1e-12) and torch.allclose(v2[s], w2, atol=1e-12)
    (grad,) = torch.autograd.grad(v1.sum(), theta)
    assert grad.shape == (7, 2, 5) and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_transition_rows_are_distributions_and_agent_views_swap():
    theta = initial_theta([3])
    p0, P = transition_matrix(theta[:, 0], theta[:, 1])
    assert torch.allclose(p0.sum(-1), torch.ones(1, dtype=p0.dtype))
    assert torch.allclose(P.sum(-1), torch.ones(1, 4, dtype=P.dtype))
    # swapping the agents mirrors the chain: state CD for one is DC for the other
    q0, Q = transition_matrix(theta[:, 1], theta[:, 0])
    perm = [0, 2, 1, 3]
    assert torch.allclose(q0, p0[:, perm]) and torch.allclose(Q, P[:, perm][:, :, perm])


def test_matching_pennies_is_zero_sum():
    theta = initial_theta(range(5))
    v1, v2 = exact_values(matching_pennies(), theta[:, 0], theta[:, 1])
    assert torch.allclose(v1, -v2, atol=1e-12)


@pytest.mark.parametrize(
    "payoff1, payoff2, gamma, match",
    [
        ([[1, 2, 3], [4, 5, 6]], [[0, 0], [0, 0]], 0.9, "payoff1 must have shape"),
        ([[1, 2], [3, 4]], [1, 2, 3, 4], 0.9, "payoff2 must have shape"),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]], 1.0, "gamma must be"),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]], 0.0, "gamma must be"),
        ([[1, float("nan")], [3, 4]], [[1, 2], [3, 4]], 0.5, "finite"),
        ("abc", [[1, 2], [3, 4]], 0.5, "payoff1"),
    ],
)
def test_bad_games_raise(payoff1, payoff2, gamma, match):
    with pytest.raises(BadInputError, match=match):
        MatrixGame(payoff1, payoff2, gamma)


@pytest.mark.parametrize(
    "theta1, theta2, match",
    [
        (torch.zeros(4), torch.zeros(5), "theta1 must have shape"),
        (torch.zeros(3, 5), torch.zeros(2, 5), "same number of seeds"),
        (torch.zeros(5, dtype=torch.long), torch.zeros(5), "floating-point"),
        ([0.0] * 5, torch.zeros(5), "torch.Tensor"),
        (torch.zeros(2, 3, 5), torch.zeros(2, 3, 5), "shape"),
    ],
)
def test_bad_thetas_raise(theta1, theta2, match):
    with pytest.raises(BadInputError, match=match):
        exact_values(ipd(), theta1, theta2)


def test_unknown_policy_name():
    with pytest.raises(BadInputError, match="unknown policy"):
        policy_logits("grim")
