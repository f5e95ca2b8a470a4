"""Naive and LOLA policy-gradient learners in the coin game, batched over seeds, with checkpoints.

Foerster et al., AAMAS 2018 (arXiv:1709.04326), Sec. 5.3 (coin game) with the DiCE surrogate of
Foerster et al., ICML 2018 (arXiv:1802.05098), Sec. 4: each update plays `episodes` games of
`horizon` steps per seed, builds the DiCE surrogates (V1, V2) of `etude.games.dice` from the
recorded log-probabilities, and moves each agent along its learner's ascent direction
(`etude.games.learners`: naive grad_1 V1, or LOLA's Eq. 4.2) with Adam. The two agents' Adam steps on
hand-made ascent directions are the step's own update; ``etude.runtime.train_loop`` owns the step count,
progress, checkpoints and resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import torch

from etude.errors import BadInputError, CheckpointError
from etude.games.coin import CoinGame
from etude.games.coin_policy import MEMORY, MLPPolicy, pick_memory
from etude.games.dice import dice_objective, discounted_rewards, leave_one_out_baseline
from etude.games.learners import learner_gradient, swap_view
from etude.games.training import as_seed_list
from etude.runtime import Saved, train_loop
from etude.runtime.seeding import generator_seed
from etude.validation import check_int, check_number

__all__ = ["CoinRollouts", "CoinDiceValues", "CoinHistory", "play_coin", "coin_outcomes", "train_coin"]

COIN_LEARNERS = ("naive", "lola")


@dataclass(frozen=True)
class CoinRollouts:
    """Recorded play: inputs [seeds, batch, horizon, 2, D], actions and rewards [seeds, batch, horizon, 2],
    picks [seeds, batch, horizon, 2, 2] (agent i picked colour c)."""

    inputs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    picks: torch.Tensor


def play_coin(
    policy: MLPPolicy,
    theta1: torch.Tensor,
    theta2: torch.Tensor,
    episodes: int,
    horizon: int,
    grid: int = 3,
    generator: torch.Generator | None = None,
) -> CoinRollouts:
    """Play `episodes` games of `horizon` steps per seed, agent 1 = red with theta1 [seeds, P], agent 2 = blue."""
    for name, value in (("episodes", episodes), ("horizon", horizon)):
        check_int(name, value, 1)
    seeds = theta1.shape[0]
    env = CoinGame(seeds * episodes, grid)
    if env.obs_dim != policy.obs_dim:
        raise BadInputError(
            f"policy expects observations of {policy.obs_dim}, the {grid}x{grid} game gives {env.obs_dim}"
        )
    obs = env.reset(generator)
    memory = torch.zeros(seeds * episodes, 2, MEMORY)
    inputs, actions, rewards, picks = [], [], [], []
    with torch.no_grad():
        for _ in range(horizon):
            x = policy.inputs(obs, memory).view(seeds, episodes, 2, -1)
            chosen = []
            for agent, theta in ((0, theta1), (1, theta2)):
                p = policy.log_probs(theta.detach(), x[:, :, agent]).exp().cumsum(-1)  # [seeds, episodes, 4]
                u = torch.rand(seeds, episodes, 1, generator=generator, dtype=p.dtype)
                chosen.append((u > p[..., :-1]).sum(-1))  # inverse-CDF draw
            a = torch.stack(chosen, dim=-1)  # [seeds, episodes, 2]
            out = env.step(a.view(-1, 2), generator)
            inputs.append(x)
            actions.append(a)
            rewards.append(out.rewards.view(seeds, episodes, 2))
            picks.append(out.picks.view(seeds, episodes, 2, 2))
            memory = pick_memory(memory, out.picks)
            obs = out.obs
    return CoinRollouts(torch.stack(inputs, 2), torch.stack(actions, 2), torch.stack(rewards, 2), torch.stack(picks, 2))


class CoinDiceValues:
    """`values(theta1, theta2) -> (V1, V2)` [seeds]: DiCE surrogates of both agents' discounted returns
    on fixed coin-game rollouts, with the leave-one-out baseline (the same surrogate as `DiceValues`)."""

    def __init__(self, policy: MLPPolicy, rollouts: CoinRollouts, gamma: float, baseline: bool = True) -> None:
        self.policy, self.rollouts = policy, rollouts
        self.discounted = discounted_rewards(rollouts.rewards.double(), gamma).to(rollouts.rewards.dtype)
        self.baseline = leave_one_out_baseline(self.discounted) if baseline else None

    def log_probs(self, theta: torch.Tensor, agent: int) -> torch.Tensor:
        """log pi_agent(a_t | x_t) [seeds, batch, horizon] of the recorded actions."""
        r = self.rollouts
        logp = self.policy.log_probs(theta, r.inputs[:, :, :, agent])
        return logp.gather(-1, r.actions[..., agent : agent + 1]).squeeze(-1)

    def __call__(self, theta1: torch.Tensor, theta2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return dice_objective(self.log_probs(theta1, 0), self.log_probs(theta2, 1), self.discounted, self.baseline)


def coin_outcomes(rollouts: CoinRollouts) -> dict[str, torch.Tensor]:
    """Per seed [seeds]: own-colour share of all picks, reward per step (both agents' mean), picks per step."""
    picks = rollouts.picks.sum(dim=(1, 2))  # [seeds, 2 agents, 2 colours]
    own = picks[:, 0, 0] + picks[:, 1, 1]
    total = picks.sum(dim=(1, 2))
    steps = rollouts.picks.shape[1] * rollouts.picks.shape[2]
    return {
        "own_share": own / total.clamp(min=1),
        "reward": rollouts.rewards.mean(dim=(1, 2, 3)),
        "picks_per_step": total / steps,
    }


@dataclass
class CoinHistory:
    """curves[name]: [seeds, steps] own_share / reward / picks_per_step of each update's rollouts;
    final[name]: [seeds] of fresh rollouts with the final policies; theta [seeds, 2, P] final."""

    learners: tuple[str, str]
    seeds: list[int]
    curves: dict[str, torch.Tensor]
    final: dict[str, torch.Tensor]
    theta: torch.Tensor
    config: dict = field(default_factory=dict)


class _CoinRun:
    """A coin-game run's updates (play, DiCE values, each agent's Adam step on its ascent direction) and the
    state a resume restores: both agents' parameters and optimizers, the curves so far, the sampler."""

    def __init__(
        self, policy: MLPPolicy, config: dict, sampler: torch.Generator, path: str | Path | None = None
    ) -> None:
        self.policy, self.config, self.sampler, self.done, self.path = policy, config, sampler, 0, path
        self.resumed: int | None = None  # the steps the resumed curves cover
        theta = policy.init(config["seeds"])
        self.params = [theta[:, 0].clone().requires_grad_(True), theta[:, 1].clone().requires_grad_(True)]
        self.optimizers = [torch.optim.Adam([p], lr=config["lr"]) for p in self.params]
        n, steps = len(config["seeds"]), config["steps"]
        self.curves = {k: torch.zeros(n, steps) for k in ("own_share", "reward", "picks_per_step")}

    def step(self, t: int, _: object) -> None:
        c = self.config
        t1, t2 = self.params[0].detach(), self.params[1].detach()
        rollouts = play_coin(self.policy, t1, t2, c["episodes"], c["horizon"], c["grid"], self.sampler)
        for k, v in coin_outcomes(rollouts).items():
            self.curves[k][:, t] = v
        values = CoinDiceValues(self.policy, rollouts, c["gamma"])
        g1 = learner_gradient(c["learners"][0], values, t1, t2, c["opponent_lr"])
        g2 = learner_gradient(c["learners"][1], swap_view(values), t2, t1, c["opponent_lr"])
        for p, opt, g in zip(self.params, self.optimizers, (g1, g2)):
            p.grad = -g.to(p.dtype)  # Adam minimizes; the learners return ascent directions
            opt.step()

    def advance(self, done: int) -> None:
        self.done = done

    def start(self, start: int) -> None:
        """The loop (re)starts at ``start``: resumed curves must cover exactly the steps before it."""
        if self.resumed is not None and self.resumed != start:
            self._refuse(f"curves cover {self.resumed} steps, its step is {start}")
        self.done = start

    def state(self) -> dict[str, Any]:
        return {
            "theta": Saved(lambda: [p.detach().clone() for p in self.params], self._load_params),
            "optimizers": Saved(lambda: [opt.state_dict() for opt in self.optimizers], self._load_optimizers),
            "curves": Saved(lambda: {k: c[:, : self.done].clone() for k, c in self.curves.items()}, self._load_curves),
            "sampler": self.sampler,
        }

    def _refuse(self, why: str) -> NoReturn:
        raise CheckpointError(f"checkpoint {self.path} does not fit this run: {why}; delete it or run without --resume")

    def _fits(self, name: str, stored: Any, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        """Refuse a stored tensor of another shape or dtype (``copy_`` would cast an int64 one silently)."""
        if not isinstance(stored, torch.Tensor) or tuple(stored.shape) != shape or stored.dtype != dtype:
            kind = (
                f"a {stored.dtype} tensor of shape {tuple(stored.shape)}"
                if isinstance(stored, torch.Tensor)
                else (f"a {type(stored).__name__}")
            )
            self._refuse(f"{name} is {kind}, expected a {dtype} tensor of shape {shape}")

    @torch.no_grad()
    def _load_params(self, stored: Any) -> None:
        if not isinstance(stored, (list, tuple)) or len(stored) != len(self.params):
            self._refuse(f"theta is not a list of {len(self.params)} tensors")
        for i, (p, value) in enumerate(zip(self.params, stored)):
            self._fits(f"theta[{i}]", value, tuple(p.shape), p.dtype)
            p.copy_(value)

    def _load_optimizers(self, stored: Any) -> None:
        if not isinstance(stored, (list, tuple)) or len(stored) != len(self.optimizers):
            self._refuse(f"optimizers is not a list of {len(self.optimizers)} Adam states")
        for i, (opt, state, p) in enumerate(zip(self.optimizers, stored, self.params)):
            moments = state.get("state", {}).values() if isinstance(state, dict) else []
            for moment in moments:
                if not isinstance(moment, dict):
                    self._refuse(f"optimizers[{i}] holds a {type(moment).__name__}, expected Adam's moments")
                for key in ("exp_avg", "exp_avg_sq"):
                    self._fits(f"optimizers[{i}].{key}", moment.get(key), tuple(p.shape), p.dtype)
            try:
                opt.load_state_dict(state)
            except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as error:
                self._refuse(f"optimizers[{i}] does not load ({type(error).__name__})")

    def _load_curves(self, stored: Any) -> None:
        if not isinstance(stored, dict) or set(stored) != set(self.curves):
            self._refuse(f"curves does not hold {sorted(self.curves)}")
        done = stored["own_share"].shape[1] if isinstance(stored["own_share"], torch.Tensor) else -1
        if not 0 <= done <= self.config["steps"]:
            self._refuse(f"curves cover {done} steps, expected 0 to {self.config['steps']}")
        for k, c in self.curves.items():
            self._fits(f"curves.{k}", stored[k], (c.shape[0], done), c.dtype)
            c[:, :done].copy_(stored[k])
        self.resumed = done


def train_coin(
    learner1: str,
    learner2: str,
    steps: int = 200,
    seeds: int | Sequence[int] = 8,
    *,
    episodes: int = 64,
    horizon: int = 50,
    grid: int = 3,
    gamma: float = 0.96,
    lr: float = 0.01,
    opponent_lr: float = 1.0,
    hidden: int = 32,
    memory: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 25,
    resume: bool = False,
    show_progress: bool = False,
) -> CoinHistory:
    """Train two coin-game learners against each other, all seeds in one batch.

    :param learner1: 'naive' (NL-PG) or 'lola' (LOLA-PG); the same for learner2.
    :param steps: simultaneous updates; each plays `episodes` x `horizon` steps per seed.
    :param lr: Adam step size on the ascent direction; opponent_lr: eta of LOLA on the
        unnormalized DiCE value sum_t gamma^t r_t.
    :param checkpoint: with resume=True a killed run continues to the same result.
    """
    _check_settings((learner1, learner2), steps, gamma, lr, opponent_lr)
    seed_list = as_seed_list(seeds)
    policy = MLPPolicy(CoinGame(1, grid).obs_dim, hidden, memory)  # CoinGame validates grid
    config = {"learners": [learner1, learner2], "steps": steps, "seeds": seed_list, "episodes": episodes}
    config |= {"horizon": horizon, "grid": grid, "gamma": float(gamma), "lr": float(lr)}
    config |= {"opponent_lr": float(opponent_lr), "hidden": hidden, "memory": memory}
    n = len(seed_list)
    run = _CoinRun(
        policy, config, torch.Generator().manual_seed(generator_seed(seed_list[0] * 1_000_003 + n)), checkpoint
    )
    train_loop(
        run.step,
        steps=steps,
        kind="games.coin",
        config=config,
        state=run.state(),
        checkpoint=checkpoint,
        every=checkpoint_every,
        resume=resume,
        on_start=run.start,
        after_step=run.advance,
        desc=f"coin {learner1} vs {learner2}",
        show_progress=show_progress,
    )
    params, curves, learners = run.params, run.curves, (learner1, learner2)
    final_theta = torch.stack([p.detach() for p in params], dim=1)
    evaluation = torch.Generator().manual_seed(generator_seed(seed_list[0] * 1_000_003 + n + 1))
    final = coin_outcomes(play_coin(policy, final_theta[:, 0], final_theta[:, 1], episodes, horizon, grid, evaluation))
    return CoinHistory(learners, seed_list, curves, final, final_theta, config)


def _check_settings(learners: tuple[str, str], steps: int, gamma: float, lr: float, opponent_lr: float) -> None:
    """Refuse an unknown learner, a negative step count, gamma outside (0, 1) and a non-positive rate."""
    for name in learners:
        if name not in COIN_LEARNERS:
            raise BadInputError(f"unknown coin-game learner {name!r}; expected one of {list(COIN_LEARNERS)}")
    check_int("steps", steps, 0)
    check_number("gamma", gamma, 0, 1, low_open=True, high_open=True)
    for name, value in (("lr", lr), ("opponent_lr", opponent_lr)):
        check_number(name, value, 0, low_open=True)
