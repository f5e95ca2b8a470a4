"""Iterated matrix games and opponent-shaping learners (LOLA, Foerster et al. 2018).

Import what you need from here::

    from etude.games import ipd, exact_values, train
    history = train(ipd(), "lola", "lola", seeds=200)
"""

from etude.games.dice import DiceValues, Rollouts, magic_box, rollout_log_probs, sample_rollouts, truncated_values
from etude.games.learners import LEARNERS, exact_value_fn, lola_gradient, lookahead_gradient, naive_gradient
from etude.games.matrix import (
    STATES,
    MatrixGame,
    exact_values,
    ipd,
    matching_pennies,
    policy_logits,
    transition_matrix,
    unnormalized_values,
)
from etude.games.training import ESTIMATORS, History, initial_theta, train

__all__ = [
    "DiceValues", "ESTIMATORS", "History", "LEARNERS", "exact_value_fn", "MatrixGame", "Rollouts", "STATES",
    "exact_values", "initial_theta", "ipd", "lola_gradient", "lookahead_gradient", "magic_box",
    "matching_pennies", "naive_gradient", "policy_logits", "rollout_log_probs", "sample_rollouts",
    "train", "transition_matrix", "truncated_values", "unnormalized_values",
]
