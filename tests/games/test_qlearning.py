"""NL-Q tournament entrant: the Q update, epsilon-greedy logits, the training loop and bad input."""

import pytest
import torch

from etude.errors import BadInputError
from etude.games import ipd
from etude.games.qlearning import q_policy_logits, q_update, train_against_q
from etude.games.tournament import tournament


def test_q_update_is_the_tabular_rule():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 5, 2, generator=g, dtype=torch.float64)
    state, action, nxt = torch.tensor([0, 2, 4]), torch.tensor([1, 0, 1]), torch.tensor([3, 1, 4])
    reward = torch.tensor([-1.0, -3.0, 0.0], dtype=torch.float64)
    new = q_update(q, state, action, reward, nxt, 0.1, 0.9)
    for s in range(3):
        expected = q.clone()[s]
        target = reward[s] + 0.9 * q[s, nxt[s]].max()
        expected[state[s], action[s]] = 0.9 * q[s, state[s], action[s]] + 0.1 * target
        assert torch.allclose(new[s], expected)
    assert not torch.equal(new, q)


def test_epsilon_greedy_logits():
    q = torch.tensor([[[1.0, 0.0]] * 5, [[0.0, 2.0]] * 5], dtype=torch.float64)
    p = torch.sigmoid(q_policy_logits(q, 0.05))
    assert torch.allclose(p[0], torch.full((5,), 0.95, dtype=torch.float64))
    assert torch.allclose(p[1], torch.full((5,), 0.05, dtype=torch.float64))


def test_training_is_deterministic_and_moves_both_kinds_of_learner():
    a = train_against_q(ipd(), "lola", "nl-q", rounds=3, seeds=[1, 2], horizon=20)
    b = train_against_q(ipd(), "lola", "nl-q", rounds=3, seeds=[1, 2], horizon=20)
    assert torch.equal(a.theta, b.theta) and a.theta.shape == (2, 4, 2, 5)
    assert not torch.equal(a.theta[:, 0, 0], a.theta[:, -1, 0])  # LOLA updated its logits
    probs = torch.sigmoid(a.theta[:, :, 1])
    assert torch.allclose(torch.minimum(probs, 1 - probs), torch.full_like(probs, 0.05))  # NL-Q plays eps-greedy


def test_tournament_accepts_nl_q():
    result = tournament(ipd(), ("naive", "nl-q"), seeds=2, steps=2, q_rounds=2)
    assert set(result.rewards) == {("naive", "naive"), ("naive", "nl-q"), ("nl-q", "naive"), ("nl-q", "nl-q")}
    assert all(torch.isfinite(r).all() for r in result.rewards.values())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(learner1="sos"), "unknown learner"),
        (dict(learner1="naive", learner2="lola"), "at least one 'nl-q'"),
        (dict(eps=0.7), "eps"),
        (dict(rounds=-1), "rounds"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = dict(learner1="nl-q", learner2="naive", rounds=1, seeds=1, horizon=2)
    args.update(kwargs)
    with pytest.raises(BadInputError, match=match):
        train_against_q(ipd(), **args)
