"""Iterated matrix games, the coin game and opponent-shaping learners (LOLA, Foerster et al. 2018).

Import what you need from here::

    from etude.games import ipd, exact_values, train, train_coin
    history = train(ipd(), "lola", "lola", seeds=200)
    om = train(ipd(), "lola", "lola", estimator="dice", opponent_model=True, seeds=32)   # LOLA-OM
    coin = train_coin("lola", "lola", steps=100, seeds=8)                               # LOLA-PG
"""

from etude.games.coin import CoinGame, CoinState, CoinStep
from etude.games.coin_policy import MLPPolicy, pick_memory
from etude.games.coin_training import CoinDiceValues, CoinHistory, CoinRollouts, coin_outcomes, play_coin, train_coin
from etude.games.dice import (
    DiceValues,
    Rollouts,
    dice_objective,
    discounted_rewards,
    leave_one_out_baseline,
    magic_box,
    rollout_log_probs,
    sample_rollouts,
    truncated_values,
)
from etude.games.learners import LEARNERS, exact_value_fn, lola_gradient, lookahead_gradient, naive_gradient, swap_view
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
from etude.games.opponent import estimate_error, fit_opponent
from etude.games.training import ESTIMATORS, History, initial_theta, train

__all__ = [
    "CoinDiceValues",
    "CoinGame",
    "CoinHistory",
    "CoinRollouts",
    "CoinState",
    "CoinStep",
    "MLPPolicy",
    "coin_outcomes",
    "dice_objective",
    "discounted_rewards",
    "estimate_error",
    "fit_opponent",
    "leave_one_out_baseline",
    "pick_memory",
    "play_coin",
    "swap_view",
    "train_coin",
    "DiceValues",
    "ESTIMATORS",
    "History",
    "LEARNERS",
    "exact_value_fn",
    "MatrixGame",
    "Rollouts",
    "STATES",
    "exact_values",
    "initial_theta",
    "ipd",
    "lola_gradient",
    "lookahead_gradient",
    "magic_box",
    "matching_pennies",
    "naive_gradient",
    "policy_logits",
    "rollout_log_probs",
    "sample_rollouts",
    "train",
    "transition_matrix",
    "truncated_values",
    "unnormalized_values",
]
