"""Two learners playing an iterated matrix game, batched over seeds, with checkpoints.

Foerster et al., AAMAS 2018 (arXiv:1709.04326), Sec. 4: both agents update simultaneously,
theta_i <- theta_i + delta * (learner i's ascent direction). Official exact defaults:
delta = eta = 1 on the unnormalized value, 200 steps, theta ~ N(0, 1).

The updates are exact (closed-form values, or DiCE surrogates of sampled rollouts) and simultaneous,
not a loss for an optimizer: the step makes its own update and ``etude.runtime.train_loop`` owns the
step count, progress and checkpoints (the parameter history and the sampler's state) and resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import torch

from etude.errors import BadInputError, CheckpointError
from etude.games.dice import DiceValues, sample_rollouts
from etude.games.learners import LEARNERS, exact_value_fn, learner_gradient, swap_view
from etude.games.matrix import MatrixGame, exact_values
from etude.games.opponent import fit_opponent
from etude.runtime import Saved, train_loop
from etude.validation import check_int, check_number

__all__ = ["History", "train", "initial_theta", "exact_rewards", "ESTIMATORS"]

ESTIMATORS = ("exact", "dice")


@dataclass
class History:
    """What a training run went through.

    rewards: [seeds, steps+1, 2] exact per-step rewards (1-gamma) V_i of the current policies.
    theta: [seeds, steps+1, 2, 5] both agents' logits after each step (index 0 = initial).
    """

    game: str
    learners: tuple[str, str]
    seeds: list[int]
    rewards: torch.Tensor
    theta: torch.Tensor
    config: dict = field(default_factory=dict)
    estimates: torch.Tensor | None = None
    """With opponent modelling: [seeds, steps, 2, 5], agent i's estimate of the other's logits at each update."""

    def final_rewards(self) -> torch.Tensor:
        """Per-step rewards [seeds, 2] of the final policies."""
        return self.rewards[:, -1]

    def probabilities(self) -> torch.Tensor:
        """P(cooperate) [seeds, steps+1, 2, 5] in each of the 5 states, from each agent's side."""
        return torch.sigmoid(self.theta)


MAX_RUN_CELLS = 10_000_000
"""Most seeds x (steps + 1) one `train` call keeps (80 bytes each: about 0.8 GB)."""


def initial_theta(seeds: Sequence[int], std: float = 1.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """theta [seeds, 2, 5] ~ N(0, std^2); seed s always draws the same logits, whatever the batch."""
    draws = [
        torch.randn(2, 5, generator=torch.Generator().manual_seed(int(s) % 2**64), dtype=torch.float64) for s in seeds
    ]
    return (std * torch.stack(draws)).to(dtype)


def as_seed_list(seeds: int | Sequence[int]) -> list[int]:
    """``seeds`` as a list of distinct non-negative ints: a count n gives ``[0, ..., n - 1]``."""
    if isinstance(seeds, bool):
        raise BadInputError(f"seeds must be a count or a list of ints, got {seeds!r}")
    if isinstance(seeds, int):
        if not 1 <= seeds <= MAX_RUN_CELLS:
            raise BadInputError(f"seeds must be a count in [1, {MAX_RUN_CELLS:,}], got {seeds}")
        return list(range(seeds))
    values = list(seeds)
    if not values or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in values):
        raise BadInputError(f"seeds must be a positive count or a non-empty list of non-negative ints, got {seeds!r}")
    if len(set(values)) != len(values):
        raise BadInputError("seeds must not repeat")
    return values


class _Run:
    """A run's simultaneous updates and the parameter history so far, its checkpointed state: theta
    [seeds, done + 1, 2, 5] and, with opponent modelling, the estimates [seeds, done, 2, 5]."""

    def __init__(self, game: MatrixGame, config: dict, sampler: torch.Generator, path: str | Path | None) -> None:
        self.game, self.config, self.sampler, self.path, self.done = game, config, sampler, path, 0
        n, steps = len(config["seeds"]), config["steps"]
        self.thetas = torch.zeros(n, steps + 1, 2, 5, dtype=torch.float64)
        self.thetas[:, 0] = initial_theta(config["seeds"], config["init_std"])
        self.estimates = torch.zeros(n, steps, 2, 5, dtype=torch.float64) if config["opponent_model"] else None

    def step(self, t: int, _: object) -> None:
        """Both agents' update t: theta_i <- theta_i + delta * (learner i's ascent direction)."""
        c, thetas, estimates = self.config, self.thetas, self.estimates
        (learner1, learner2), theta1, theta2 = c["learners"], thetas[:, t, 0], thetas[:, t, 1]
        rollouts = None
        if c["estimator"] == "dice" or estimates is not None:
            rollouts = sample_rollouts(self.game, theta1, theta2, c["batch_size"], c["horizon"], self.sampler)
        exact = c["estimator"] == "exact" or rollouts is None
        values = exact_value_fn(self.game) if exact else DiceValues(self.game, rollouts)  # type: ignore[arg-type]
        seen2, seen1 = theta2, theta1  # what each agent uses for the other's parameters
        if estimates is not None:  # opponent_model
            assert rollouts is not None  # sampled above for the opponent model
            before = estimates[:, t - 1] if t > 0 else None
            seen2 = fit_opponent(rollouts, 2, None if before is None else before[:, 0])
            seen1 = fit_opponent(rollouts, 1, None if before is None else before[:, 1])
            estimates[:, t, 0], estimates[:, t, 1] = seen2, seen1
        g1 = learner_gradient(learner1, values, theta1, seen2, c["opponent_lr"])
        g2 = learner_gradient(learner2, swap_view(values), theta2, seen1, c["opponent_lr"])
        thetas[:, t + 1, 0] = theta1 + c["lr"] * g1
        thetas[:, t + 1, 1] = theta2 + c["lr"] * g2

    def hooks(self) -> dict[str, Any]:
        """``train_loop``'s checkpointed state and hooks of this run."""
        return {"state": self.state(), "after_step": self.advance, "on_start": self.check}

    def advance(self, done: int) -> None:
        self.done = done

    def state(self) -> dict[str, Any]:
        """The checkpointed state: the sampler, theta [seeds, done + 1, 2, 5], the estimates [seeds, done, 2, 5]."""
        state = {"sampler": self.sampler, "theta": Saved(lambda: self.thetas[:, : self.done + 1].clone(), self._load)}
        if self.estimates is not None:  # opponent_model
            estimates = self.estimates
            state["estimates"] = Saved(lambda: estimates[:, : self.done].clone(), self._load_estimates)
        return state

    def _load(self, theta: Any) -> None:
        done = theta.shape[1] - 1 if isinstance(theta, torch.Tensor) and theta.dim() == 4 else -1
        if not 0 <= done < self.thetas.shape[1]:
            self._refuse(f"theta is {_kind(theta)}, expected a {self.thetas.dtype} tensor [seeds, step + 1, 2, 5]")
        self._fits("theta", theta, self.thetas[:, : done + 1])
        self.thetas[:, : done + 1] = theta
        self.done = done

    def _load_estimates(self, estimates: Any) -> None:
        assert self.estimates is not None  # opponent_model
        self._fits("estimates", estimates, self.estimates[:, : self.done])
        self.estimates[:, : self.done] = estimates

    def _fits(self, name: str, stored: Any, fresh: torch.Tensor) -> None:
        """Refuse a stored history that is not a tensor of the fresh one's shape and dtype (an int64 or
        float32 theta would be cast silently and change the run)."""
        if not isinstance(stored, torch.Tensor) or stored.shape != fresh.shape or stored.dtype != fresh.dtype:
            self._refuse(f"{name} is {_kind(stored)}, expected {_kind(fresh)}")

    def check(self, start: int) -> None:
        """The loop resumed at ``start``: the stored history must end there."""
        if start != self.done:
            self._refuse(f"its step {start} and theta's {self.done} steps differ")

    def _refuse(self, why: str) -> NoReturn:
        raise CheckpointError(f"checkpoint {self.path} does not fit this run: {why}; delete it or run without --resume")


def _kind(value: Any) -> str:
    """'a float64 tensor of shape (2, 3, 2, 5)', 'a str', ... for a message."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _check(
    learner1: str, learner2: str, estimator: str, steps: int, lr: float, opponent_lr: float, init_std: float
) -> None:
    """Raise ``BadInputError`` for an unknown learner or estimator, or a bad count or step size."""
    for name in (learner1, learner2):
        if name not in LEARNERS:
            raise BadInputError(f"unknown learner {name!r}; expected one of {sorted(LEARNERS)}")
    if estimator not in ESTIMATORS:
        raise BadInputError(f"unknown estimator {estimator!r}; expected one of {list(ESTIMATORS)}")
    if estimator == "dice" and "lookahead" in (learner1, learner2):
        raise BadInputError(
            "learner 'lookahead' needs values at the opponent's updated parameters; use estimator='exact'"
        )
    check_int("steps", steps, 0)
    for name, value in (("lr", lr), ("opponent_lr", opponent_lr), ("init_std", init_std)):
        check_number(name, value, 0, low_open=True)


def train(
    game: MatrixGame,
    learner1: str,
    learner2: str,
    steps: int = 200,
    seeds: int | Sequence[int] = 50,
    lr: float = 1.0,
    opponent_lr: float = 1.0,
    *,
    estimator: str = "exact",
    batch_size: int = 128,
    horizon: int = 150,
    init_std: float = 1.0,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    resume: bool = False,
    show_progress: bool = False,
    opponent_model: bool = False,
) -> History:
    """Train two learners against each other on `game`, all seeds in one batch.

    :param learner1: 'naive', 'lola' or 'lookahead' (see `etude.games.learners`).
    :param steps: number of simultaneous updates.
    :param seeds: a count n (seeds 0..n-1) or explicit non-negative seeds; each seeds its init.
    :param lr: delta, the step size on the unnormalized value V = sum_t gamma^t r_t.
    :param opponent_lr: eta, the opponent step LOLA and lookahead assume.
    :param estimator: 'exact' (closed-form values) or 'dice' (sampled rollouts, DiCE surrogates).
    :param batch_size, horizon: rollouts per seed and their length, for estimator='dice'.
    :param checkpoint: file to write every `checkpoint_every` steps; with resume=True an
        existing one is loaded and training continues to the same result as an uninterrupted run.
    :param opponent_model: LOLA-OM / NL-OM (Sec. 4.3): each agent replaces the opponent's parameters
        by their maximum-likelihood estimate from the opponent's actions in `batch_size` episodes of
        `horizon` steps played at every update (the DiCE rollouts themselves for estimator='dice').
    """
    _check(learner1, learner2, estimator, steps, lr, opponent_lr, init_std)
    seed_list = as_seed_list(seeds)
    _check_cells(len(seed_list), steps)
    config = {"game": [game.payoff1.tolist(), game.payoff2.tolist(), game.gamma], "learners": [learner1, learner2]}
    config |= {"steps": steps, "seeds": seed_list, "lr": float(lr), "opponent_lr": float(opponent_lr)}
    config |= {"estimator": estimator, "batch_size": batch_size, "horizon": horizon, "init_std": float(init_std)}
    config["opponent_model"] = bool(opponent_model)
    n = len(seed_list)
    sampler = torch.Generator().manual_seed((seed_list[0] * 1_000_003 + n) % 2**63)  # torch seeds are < 2**64
    run = _Run(game, config, sampler, checkpoint)
    train_loop(
        run.step,
        steps=steps,
        kind="games.train",
        config=config,
        checkpoint=checkpoint,
        every=checkpoint_every,
        resume=resume,
        desc=f"{learner1} vs {learner2}",
        show_progress=show_progress,
        **run.hooks(),
    )
    rewards = exact_rewards(game, run.thetas)
    return History(game.name, (learner1, learner2), seed_list, rewards, run.thetas, config, run.estimates)


def exact_rewards(game: MatrixGame, thetas: torch.Tensor) -> torch.Tensor:
    """Exact per-step rewards (1 - gamma) V_i [seeds, steps + 1, 2] of the logits history [seeds, steps + 1, 2, 5]."""
    with torch.no_grad():
        v1, v2 = exact_values(game, thetas.reshape(-1, 2, 5)[:, 0], thetas.reshape(-1, 2, 5)[:, 1])
        return torch.stack([v1, v2], dim=-1).reshape(*thetas.shape[:2], 2)


def _check_cells(seeds: int, steps: int) -> None:
    """Refuse a run whose parameter history, seeds x (steps + 1) rows, exceeds ``MAX_RUN_CELLS``."""
    if seeds * (steps + 1) > MAX_RUN_CELLS:
        raise BadInputError(
            f"seeds x (steps + 1) must be at most {MAX_RUN_CELLS:,} (the parameter history is kept "
            f"in memory), got {seeds:,} seeds and {steps:,} steps"
        )
