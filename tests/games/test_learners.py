"""Learner gradients against finite differences of the exact values."""

import pytest
import torch

from etude.errors import BadInputError
from etude.games import initial_theta, ipd, matching_pennies, unnormalized_values
from etude.games.learners import exact_value_fn, learner_gradient, lola_gradient, lookahead_gradient, naive_gradient

EPS = 1e-4


exact_fn = exact_value_fn


def central_difference(f, x):
    """d f / d x [5] for a scalar function of x [5], by central differences."""
    grad = torch.zeros_like(x)
    for j in range(x.shape[0]):
        e = torch.zeros_like(x)
        e[j] = EPS
        grad[j] = (f(x + e) - f(x - e)) / (2 * EPS)
    return grad


def v(game, a, b, agent):
    return unnormalized_values(game, a.unsqueeze(0), b.unsqueeze(0))[0, agent]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("make_game", [ipd, matching_pennies])
def test_naive_gradient_matches_finite_differences(seed, make_game):
    game = make_game()
    t1, t2 = initial_theta([seed])[0]
    grad = naive_gradient(exact_fn(game), t1[None], t2[None], 1.0)[0]
    expected = central_difference(lambda x: v(game, x, t2, 0), t1)
    assert torch.allclose(grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("make_game", [ipd, matching_pennies])
@pytest.mark.parametrize("eta", [1.0, 0.3])
def test_lola_correction_matches_nested_finite_differences(seed, make_game, eta):
    """LOLA = grad_1 V1 + eta * grad_1 [ (grad_2 V1)^T grad_2 V2 ], grad_2 V1 held fixed (Eq. 4.2)."""
    game = make_game()
    t1, t2 = initial_theta([seed])[0]
    grad_2_v1 = central_difference(lambda y: v(game, t1, y, 0), t2)  # held constant
    h = 1e-3

    def directional(x):  # (grad_2 V1)^T grad_2 V2 at (x, t2), by a central difference along grad_2 V1
        return (v(game, x, t2 + h * grad_2_v1, 1) - v(game, x, t2 - h * grad_2_v1, 1)) / (2 * h)

    expected = central_difference(lambda x: v(game, x, t2, 0), t1) + eta * central_difference(directional, t1)
    grad = lola_gradient(exact_fn(game), t1[None], t2[None], eta)[0]
    assert torch.allclose(grad, expected, rtol=1e-4, atol=1e-4), (grad, expected)
    # and the correction is not negligible, so the check has teeth
    naive = naive_gradient(exact_fn(game), t1[None], t2[None], eta)[0]
    assert (grad - naive).abs().max() > 1e-2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lookahead_matches_finite_differences(seed):
    game = ipd()
    t1, t2 = initial_theta([seed])[0]
    step = central_difference(lambda y: v(game, t1, y, 1), t2)
    expected = central_difference(lambda x: v(game, x, t2 + 0.5 * step, 0), t1)
    grad = lookahead_gradient(exact_fn(game), t1[None], t2[None], 0.5)[0]
    assert torch.allclose(grad, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["naive", "lola", "lookahead"])
def test_batched_gradients_equal_per_seed(name):
    game = ipd()
    theta = initial_theta(range(6))
    batched = learner_gradient(name, exact_fn(game), theta[:, 0], theta[:, 1], 1.0)
    for s in range(6):
        single = learner_gradient(name, exact_fn(game), theta[s : s + 1, 0], theta[s : s + 1, 1], 1.0)
        assert torch.allclose(batched[s], single[0], atol=1e-10)


def test_unknown_learner():
    theta = initial_theta([0])
    with pytest.raises(BadInputError, match="unknown learner 'sos'"):
        learner_gradient("sos", exact_fn(ipd()), theta[:, 0], theta[:, 1], 1.0)
