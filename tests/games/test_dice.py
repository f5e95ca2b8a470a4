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


def _mixed_term(values, t1, t2, direction):
    """grad_1 (direction^T grad_2 V2): the second-order term LOLA contracts with grad_2 V1."""
    t1, t2 = t1.detach().requires_grad_(True), t2.detach().requires_grad_(True)
    _, v2 = values(t1, t2)
    (g2,) = torch.autograd.grad(v2.sum(), t2, create_graph=True)
    (h,) = torch.autograd.grad((g2 * direction).sum(), t1)
    return h


def _small_batch_z(batch, baseline, order, seed=0, replicas=2000):
    """max |z| of the mean of `replicas` DiCE estimates of one derivative order against the exact one."""
    game, horizon = ipd(), 8
    base = initial_theta([seed])[0]
    t1, t2 = base[0].expand(replicas, 5).clone(), base[1].expand(replicas, 5).clone()
    rollouts = sample_rollouts(game, t1, t2, batch, horizon, torch.Generator().manual_seed(200 + seed))
    direction = torch.tensor([0.3, -1.0, 0.5, 0.8, -0.2], dtype=torch.float64)

    def exact(a, b):
        v = truncated_values(game, a, b, horizon)
        return v[:, 0], v[:, 1]

    def rule(values, a, b):
        return naive_gradient(values, a, b, 1.0) if order == "first" else _mixed_term(values, a, b, direction)

    estimates = rule(DiceValues(game, rollouts, baseline=baseline), t1, t2)
    expected = rule(exact, t1[:1], t2[:1])[0]
    return ((estimates.mean(0) - expected) / (estimates.std(0) / replicas**0.5)).abs().max()


@pytest.mark.parametrize("batch", [2, 4])
@pytest.mark.parametrize("baseline", [False, True])
@pytest.mark.parametrize("order", ["first", "mixed"])
def test_dice_derivatives_are_unbiased_at_small_batches(batch, baseline, order):
    """Each derivative order is linear in one DiCE estimate, so it is unbiased at any batch size.

    (LOLA's product of two estimates from the same episodes is not; its bias falls as 1/batch.)
    """
    assert _small_batch_z(batch, baseline, order) < 4.5


def test_a_baseline_that_sees_its_own_episode_is_caught_at_batch_2(monkeypatch):
    """The plain batch mean includes the episode's own return: biased by 1/batch, which batch 2 exposes."""
    import etude.games.dice as dice

    def biased(discounted):
        to_go = discounted.flip(2).cumsum(2).flip(2)
        return to_go.mean(dim=1, keepdim=True).expand_as(to_go)

    monkeypatch.setattr(dice, "leave_one_out_baseline", biased)
    assert _small_batch_z(2, True, "first") > 6.0


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
