"""DiCE surrogates: value 1 magic box, unbiased first and second order gradients, sampling."""

import pytest
import torch

from etude.errors import BadInputError
from etude.games import (
    DiceValues,
    initial_theta,
    ipd,
    magic_box,
    sample_rollouts,
    transition_matrix,
    truncated_values,
    unnormalized_values,
)
from etude.games.learners import lola_gradient, naive_gradient


def test_magic_box_is_one_with_the_score_derivative():
    w = torch.tensor([0.3, -2.0], requires_grad=True)
    box = magic_box(w)
    assert torch.equal(box, torch.ones(2))
    (g,) = torch.autograd.grad(box.sum(), w, create_graph=True)
    assert torch.allclose(g, torch.ones(2))
    (h,) = torch.autograd.grad(g.sum(), w)
    assert torch.allclose(h, torch.ones(2))  # d^2 box / dw^2 = box


def test_first_step_frequencies_match_the_policy():
    theta = initial_theta([4])
    rollouts = sample_rollouts(ipd(), theta[:, 0], theta[:, 1], 20000, 1, torch.Generator().manual_seed(0))
    joint = 2 * rollouts.actions1[0, :, 0] + rollouts.actions2[0, :, 0]
    freq = torch.bincount(joint, minlength=4).double() / 20000
    p0, _ = transition_matrix(theta[:, 0], theta[:, 1])
    assert torch.allclose(freq, p0[0], atol=4 * (0.25 / 20000) ** 0.5)


def test_truncated_values_converge_to_exact():
    game, theta = ipd(), initial_theta(range(3))
    long = truncated_values(game, theta[:, 0], theta[:, 1], 800)
    assert torch.allclose(long, unnormalized_values(game, theta[:, 0], theta[:, 1]), atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("baseline", [False, True])
@pytest.mark.parametrize("rule", [naive_gradient, lola_gradient])
def test_dice_gradients_are_unbiased(seed, baseline, rule):
    """Mean of 400 independent DiCE estimates equals the exact (truncated) gradient within 4.5 SE."""
    game, horizon, replicas = ipd(), 10, 400
    base = initial_theta([seed])[0]
    t1, t2 = base[0].expand(replicas, 5).clone(), base[1].expand(replicas, 5).clone()
    rollouts = sample_rollouts(game, t1, t2, 64, horizon, torch.Generator().manual_seed(100 + seed))
    estimates = rule(DiceValues(game, rollouts, baseline=baseline), t1, t2, 1.0)

    def exact(a, b):
        v = truncated_values(game, a, b, horizon)
        return v[:, 0], v[:, 1]

    expected = rule(exact, t1[:1], t2[:1], 1.0)[0]
    z = (estimates.mean(0) - expected) / (estimates.std(0) / replicas**0.5)
    assert z.abs().max() < 4.5, z
    # the estimate is informative: its mean is close to the truth relative to the gradient size
    assert (estimates.mean(0) - expected).norm() < 0.25 * expected.norm()


def test_baseline_reduces_variance():
    game, replicas = ipd(), 200
    base = initial_theta([7])[0]
    t1, t2 = base[0].expand(replicas, 5).clone(), base[1].expand(replicas, 5).clone()
    rollouts = sample_rollouts(game, t1, t2, 32, 50, torch.Generator().manual_seed(0))
    plain = naive_gradient(DiceValues(game, rollouts, baseline=False), t1, t2, 1.0).var(0).sum()
    reduced = naive_gradient(DiceValues(game, rollouts, baseline=True), t1, t2, 1.0).var(0).sum()
    assert reduced < 0.5 * plain


def test_bad_rollout_sizes():
    theta = initial_theta([0])
    with pytest.raises(BadInputError, match="batch"):
        sample_rollouts(ipd(), theta[:, 0], theta[:, 1], 0, 5)
    with pytest.raises(BadInputError, match="horizon"):
        sample_rollouts(ipd(), theta[:, 0], theta[:, 1], 4, -1)
