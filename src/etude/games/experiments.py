"""The lola study's experiments as functions that return plain data (Foerster et al., AAMAS 2018).

Table 1 (exact and policy-gradient learners in the IPD and matching pennies), opponent
modelling, the coin game and the round-robin tournament, each trained through
`etude.games.training.train` / `etude.games.coin_training.train_coin` with checkpoints under ``ckpt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from etude.games.coin_training import train_coin
from etude.games.dice import DiceValues, sample_rollouts
from etude.games.learners import exact_value_fn, lola_gradient
from etude.games.matrix import STATES, MatrixGame, ipd, matching_pennies
from etude.games.opponent import estimate_error
from etude.games.plots import plot_coin_curves, plot_estimate_error, plot_policies, plot_rewards
from etude.games.tournament import tournament
from etude.games.training import History, initial_theta, train
from etude.runtime import make_loggers
from etude.statistics import difference_interval, mean_half_width

__all__ = [
    "Runs",
    "Sizes",
    "at_nash",
    "coin_note",
    "coin_runs",
    "cooperating",
    "exact_runs",
    "log_curves",
    "median_policy",
    "om_runs",
    "pg_cosine",
    "pg_note",
    "pg_runs",
    "play_tournament",
    "plots",
    "summarize_coin",
    "summarize_exact",
    "tft_like",
]

COOPERATING = -1.2
"""Final reward per step above which both agents of a run count as cooperating."""


class Sizes(Protocol):
    """The sizes the experiments read (`etude.games.study.LolaPreset` has them)."""

    @property
    def seeds(self) -> int: ...

    @property
    def steps(self) -> int: ...

    @property
    def lr(self) -> float: ...

    @property
    def opponent_lr(self) -> float: ...

    @property
    def tournament_seeds(self) -> int: ...

    @property
    def tournament_q_rounds(self) -> int: ...

    @property
    def pg_seeds(self) -> int: ...

    @property
    def pg_steps(self) -> int: ...

    @property
    def pg_batch(self) -> int: ...

    @property
    def pg_horizon(self) -> int: ...

    @property
    def om_episodes(self) -> tuple[int, ...]: ...

    @property
    def coin_seeds(self) -> int: ...

    @property
    def coin_steps(self) -> int: ...

    @property
    def coin_episodes(self) -> int: ...

    @property
    def coin_horizon(self) -> int: ...

    @property
    def coin_lr(self) -> float: ...

    @property
    def coin_opponent_lr(self) -> float: ...

    @property
    def coin_hidden(self) -> int: ...


@dataclass
class Runs:
    """Where the study trains: seeds, checkpoint folder and whether to resume."""

    seed: int
    ckpt: Path
    resume: bool

    def seeds(self, n: int) -> list[int]:
        """The study's n run seeds, seed * 100,000 + i (the same first seeds in every experiment)."""
        return [self.seed * 100_000 + i for i in range(n)]


def cooperating(rewards: torch.Tensor) -> torch.Tensor:
    """Runs where both agents' final rewards are above -1.2 per step: bool [seeds]."""
    return (rewards > COOPERATING).all(dim=-1)


def tft_like(history: History) -> torch.Tensor:
    """Runs where both agents have P(C|CC) > .5, P(C|CD) < .5 and P(C|DD) < .5 at the end: bool [seeds]."""
    p = history.probabilities()[:, -1]  # [seeds, 2, 5]
    return ((p[..., 1] > 0.5) & (p[..., 2] < 0.5) & (p[..., 4] < 0.5)).all(dim=-1)


def median_policy(history: History, runs: torch.Tensor) -> dict[str, float]:
    """Median over the selected runs [seeds] (bool) and both agents of the final P(C | state), by state name."""
    p = history.probabilities()[runs, -1]  # [runs, 2, 5]
    if p.shape[0] == 0:
        return {name: float("nan") for name in STATES}
    median = p.reshape(-1, 5).median(dim=0).values
    return {name: float(v) for name, v in zip(STATES, median)}


def at_nash(history: History, tolerance: float = 0.1) -> torch.Tensor:
    """Runs whose 10 final probabilities are all within `tolerance` of 1/2: bool [seeds]."""
    p = history.probabilities()[:, -1]
    return ((p - 0.5).abs() < tolerance).flatten(1).all(dim=-1)


def exact_runs(p: Sizes, where: Runs) -> dict[str, History]:
    """Table 1's exact learners: NL-Ex, LA-Ex and LOLA-Ex in the IPD; naive and LOLA in matching pennies."""
    common: dict[str, Any] = dict(
        steps=p.steps, seeds=where.seeds(p.seeds), lr=p.lr, opponent_lr=p.opponent_lr, resume=where.resume,
        show_progress=True,
    )  # fmt: skip
    game, pennies, ckpt = ipd(), matching_pennies(), where.ckpt
    return {
        "NL-Ex": train(game, "naive", "naive", checkpoint=ckpt / "ipd_nl.pt", **common),
        "LA-Ex": train(game, "lookahead", "lookahead", checkpoint=ckpt / "ipd_la.pt", **common),
        "LOLA-Ex": train(game, "lola", "lola", checkpoint=ckpt / "ipd_lola.pt", **common),
        "MP-NL-Ex": train(pennies, "naive", "naive", checkpoint=ckpt / "mp_nl.pt", **common),
        "MP-LOLA-Ex": train(pennies, "lola", "lola", checkpoint=ckpt / "mp_lola.pt", **common),
    }


def summarize_exact(runs: dict[str, History]) -> dict[str, Any]:
    """Table 1's figures of the exact runs: means with 95% intervals, sds, cooperation, TFT-like and Nash shares."""
    nl, lola = runs["NL-Ex"], runs["LOLA-Ex"]
    nl_r, lola_r = nl.final_rewards().mean(-1), lola.final_rewards()
    nl_mean, nl_half = mean_half_width(nl_r)
    lola_mean, lola_half = mean_half_width(lola_r.mean(-1))
    return {
        "nl_mean": nl_mean,
        "nl_half": nl_half,
        "nl_sd": float(nl_r.std()),
        "lola_mean": lola_mean,
        "lola_half": lola_half,
        "lola_sd": float(lola_r.mean(-1).std()),
        "lola_cooperating": float(cooperating(lola_r).double().mean()),
        "lola_tft": float(tft_like(lola).double().mean()),
        "nl_tft": float(tft_like(nl).double().mean()),
        "mp_nash_lola": float(at_nash(runs["MP-LOLA-Ex"]).double().mean()),
        "mp_nash_nl": float(at_nash(runs["MP-NL-Ex"]).double().mean()),
        "la_mean": float(runs["LA-Ex"].final_rewards().mean()),
        "lola_median_policy": median_policy(lola, cooperating(lola_r)),
        "nl_median_policy": median_policy(nl, torch.ones(nl_r.shape[0], dtype=torch.bool)),
    }


def _pg_common(p: Sizes, where: Runs) -> dict[str, Any]:
    return dict(
        steps=p.pg_steps, seeds=where.seeds(p.pg_seeds), lr=p.lr, opponent_lr=p.opponent_lr, estimator="dice",
        batch_size=p.pg_batch, horizon=p.pg_horizon, resume=where.resume, show_progress=True,
    )  # fmt: skip


def pg_cosine(game: MatrixGame, seeds: list[int], p: Sizes, seed: int) -> float:
    """Median over seeds of the cosine between DiCE and exact LOLA updates at initialization."""
    theta = initial_theta(seeds)
    t1, t2 = theta[:, 0], theta[:, 1]
    generator = torch.Generator().manual_seed(seed)
    dice = DiceValues(game, sample_rollouts(game, t1, t2, p.pg_batch, p.pg_horizon, generator))
    g_dice = lola_gradient(dice, t1, t2, p.opponent_lr)
    g_exact = lola_gradient(exact_value_fn(game), t1, t2, p.opponent_lr)
    return float(torch.nn.functional.cosine_similarity(g_dice, g_exact, dim=-1).median())


def pg_runs(p: Sizes, where: Runs) -> dict[str, Any]:
    """Table 1's policy-gradient learners (DiCE): NL-PG and LOLA-PG in the IPD, and the cosine at initialization."""
    game, common = ipd(), _pg_common(p, where)
    runs = {
        "NL-PG": train(game, "naive", "naive", checkpoint=where.ckpt / "ipd_nl_pg.pt", **common),
        "LOLA-PG": train(game, "lola", "lola", checkpoint=where.ckpt / "ipd_lola_pg.pt", **common),
    }
    return {
        "runs": runs,
        "pg_lola_mean": float(runs["LOLA-PG"].final_rewards().mean()),
        "pg_nl_mean": float(runs["NL-PG"].final_rewards().mean()),
        "pg_cosine_median": pg_cosine(game, where.seeds(p.pg_seeds), p, where.seed),
        "pg_lola_cooperating": float(cooperating(runs["LOLA-PG"].final_rewards()).double().mean()),
    }


def om_runs(p: Sizes, where: Runs) -> dict[str, Any]:
    """Opponent modelling: NL-OM and LOLA-OM in the IPD (DiCE, opponent modelling), and the opponent model's error."""
    game, common, ckpt = ipd(), _pg_common(p, where), where.ckpt
    runs = {
        "NL-OM": train(game, "naive", "naive", checkpoint=ckpt / "ipd_nl_om.pt", opponent_model=True, **common),
        "LOLA-OM": train(game, "lola", "lola", checkpoint=ckpt / "ipd_lola_om.pt", opponent_model=True, **common),
    }
    errors = estimate_error(
        game,
        initial_theta(where.seeds(p.pg_seeds)),
        list(p.om_episodes),
        p.pg_horizon,
        torch.Generator().manual_seed(where.seed + 7),
    )
    return {
        "runs": runs,
        "errors": errors,
        "om_lola_mean": float(runs["LOLA-OM"].final_rewards().mean()),
        "om_nl_mean": float(runs["NL-OM"].final_rewards().mean()),
        "om_lola_cooperating": float(cooperating(runs["LOLA-OM"].final_rewards()).double().mean()),
        "om_estimate_error": {int(n): float(e) for n, e in zip(p.om_episodes, errors.median(dim=1).values)},
    }


def coin_runs(p: Sizes, where: Runs) -> dict:
    """The coin game: NL-PG and LOLA-PG pairs in the coin game on the same seeds."""
    common: dict[str, Any] = dict(
        steps=p.coin_steps, seeds=where.seeds(p.coin_seeds), episodes=p.coin_episodes, horizon=p.coin_horizon,
        lr=p.coin_lr, opponent_lr=p.coin_opponent_lr, hidden=p.coin_hidden, resume=where.resume, show_progress=True,
    )  # fmt: skip
    return {
        "NL-PG": train_coin("naive", "naive", checkpoint=where.ckpt / "coin_nl.pt", **common),
        "LOLA-PG": train_coin("lola", "lola", checkpoint=where.ckpt / "coin_lola.pt", **common),
    }


def summarize_coin(coin: dict, key: str) -> dict[str, float]:
    """LOLA-PG and NL-PG means of one final coin-game figure and their difference's 95% half-width."""
    lola, nl = coin["LOLA-PG"].final[key], coin["NL-PG"].final[key]
    diff, half = difference_interval(lola, nl)
    return {"lola": float(lola.mean()), "naive": float(nl.mean()), "diff": diff, "half": half}


def play_tournament(p: Sizes, where: Runs) -> str:
    """Round robin of naive, lookahead, LOLA and NL-Q in the IPD: a markdown table with its caption."""
    table = tournament(
        ipd(),
        ("naive", "lookahead", "lola", "nl-q"),
        seeds=where.seeds(p.tournament_seeds),
        steps=p.steps,
        lr=p.lr,
        opponent_lr=p.opponent_lr,
        q_rounds=p.tournament_q_rounds,
    )
    return (
        "Final reward per step of agent 1 (row) against agent 2 (column), IPD, "
        f"mean ± 95% interval over {p.tournament_seeds} runs; pairs with NL-Q play "
        f"{p.tournament_q_rounds} rounds of 200-step episodes:\n\n" + table.table()
    )


def log_curves(runs: dict[str, History], log_dir: Path) -> None:
    """Mean reward per step of every run over training, to CSV (and TensorBoard when installed)."""
    loggers = make_loggers(log_dir, "lola")
    for label, history in runs.items():
        for step, value in enumerate(history.rewards.mean(dim=(0, 2)).tolist()):
            for logger in loggers:
                logger.log_metrics({f"{label}/reward_per_step": value}, step=step)
    for logger in loggers:
        logger.finalize("success")


def plots(p: Sizes, runs: dict[str, History], errors: torch.Tensor, coin: dict, out_dir: Path) -> list[Path]:
    """The study's figures: IPD rewards and policies, matching pennies, LOLA-OM, the opponent model, the coin game."""
    ipd_runs = {k: v for k, v in runs.items() if not k.startswith("MP-")}
    return [
        plot_rewards(ipd_runs, out_dir / "ipd_rewards.png", "IPD: reward per step over training (mean ± sd)"),
        plot_policies(runs["NL-Ex"], out_dir / "ipd_policy_nl.png"),
        plot_policies(runs["LOLA-Ex"], out_dir / "ipd_policy_lola.png"),
        plot_policies(runs["MP-LOLA-Ex"], out_dir / "mp_policy_lola.png", "matching pennies: LOLA vs LOLA"),
        plot_policies(runs["MP-NL-Ex"], out_dir / "mp_policy_nl.png", "matching pennies: naive vs naive"),
        plot_policies(runs["LOLA-OM"], out_dir / "ipd_policy_lola_om.png", "IPD: LOLA-OM vs LOLA-OM"),
        plot_estimate_error(
            list(p.om_episodes),
            errors,
            out_dir / "om_estimate_error.png",
            f"IPD opponent model, episodes of {p.pg_horizon} steps",
        ),
        plot_coin_curves(coin, out_dir / "coin_game.png", "coin game: NL-PG vs LOLA-PG (mean ± sd over seeds)"),
    ]


def pg_note(p: Sizes) -> str:
    """How the policy-gradient runs were made, for the claims' notes."""
    return (
        f"DiCE with a leave-one-out baseline, {p.pg_batch} episodes of {p.pg_horizon} steps per update; "
        f"the same delta = eta = {p.lr:g} as the exact runs."
    )


def coin_note(p: Sizes) -> str:
    """How the coin-game runs were made, for the claims' notes."""
    return (
        f"{p.coin_steps} updates of {p.coin_episodes} games x {p.coin_horizon} steps per seed; MLP policy "
        f"({p.coin_hidden} hidden) on the egocentric grid and the last pick-up event; Adam {p.coin_lr:g}, "
        f"eta {p.coin_opponent_lr:g}; measured on fresh games with the final policies."
    )
