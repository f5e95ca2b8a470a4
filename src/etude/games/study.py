"""Study `lola`: Foerster et al., "Learning with Opponent-Learning Awareness", AAMAS 2018.

Wiring only: presets, runs of `etude.games.training`, and the claims of Table 1 / Fig. 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from etude.games.dice import DiceValues, sample_rollouts
from etude.games.learners import exact_value_fn, lola_gradient
from etude.games.matrix import ipd, matching_pennies
from etude.games.plots import plot_policies, plot_rewards
from etude.games.tournament import mean_interval, tournament
from etude.games.training import History, initial_theta, train
from etude.runtime import make_loggers
from etude.studies.protocol import Claim, Result, Study

__all__ = ["LolaPreset", "LolaStudy"]


@dataclass(frozen=True)
class LolaPreset:
    """Sizes of the LOLA study; delta = lr, eta = opponent_lr on the unnormalized value."""

    seeds: int = 200
    """Runs (independent initializations) per exact pair of learners."""
    steps: int = 200
    """Simultaneous updates per run (the official exact scripts use 200)."""
    lr: float = 1.0
    """delta, the agents' own step size (official default 1)."""
    opponent_lr: float = 1.0
    """eta, the opponent step LOLA assumes (official default 1)."""
    tournament_seeds: int = 50
    """Runs per ordered pair in the naive/lookahead/LOLA tournament."""
    pg_seeds: int = 32
    """Runs per policy-gradient pair (DiCE estimates from sampled rollouts)."""
    pg_steps: int = 200
    """Updates per policy-gradient run."""
    pg_batch: int = 64
    """Sampled episodes per update and seed."""
    pg_horizon: int = 100
    """Length of each sampled episode."""


def _cooperating(rewards: torch.Tensor) -> torch.Tensor:
    """Runs where both agents' final rewards are above -1.2 per step: bool [seeds]."""
    return (rewards > -1.2).all(dim=-1)


def _tft_like(history: History) -> torch.Tensor:
    """Runs where both agents have P(C|CC) > .5, P(C|CD) < .5 and P(C|DD) < .5 at the end: bool [seeds]."""
    p = history.probabilities()[:, -1]  # [seeds, 2, 5]
    return ((p[..., 1] > 0.5) & (p[..., 2] < 0.5) & (p[..., 4] < 0.5)).all(dim=-1)


def _at_nash(history: History, tolerance: float = 0.1) -> torch.Tensor:
    """Runs whose 10 final probabilities are all within `tolerance` of 1/2: bool [seeds]."""
    p = history.probabilities()[:, -1]
    return ((p - 0.5).abs() < tolerance).flatten(1).all(dim=-1)


class LolaStudy(Study):
    """LOLA against naive and lookahead learners on the IPD and matching pennies."""

    name = "lola"
    title = "Learning with Opponent-Learning Awareness"
    threads = 1
    citation = "Foerster, Chen, Al-Shedivat, Whiteson, Abbeel, Mordatch. AAMAS 2018. arXiv:1709.04326"
    presets = {
        "smoke": LolaPreset(seeds=16, steps=40, tournament_seeds=4, pg_seeds=2, pg_steps=5, pg_batch=16, pg_horizon=20),
        "quick": LolaPreset(),
        "full": LolaPreset(seeds=1000, tournament_seeds=200, pg_seeds=50, pg_batch=128, pg_horizon=150),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim("nl_defect", "Naive learners in the IPD end in mutual defection.",
                  "NL-Ex -1.98 (sd 0.14) per step, 20.8% TFT (Table 1)",
                  "mean final reward per step <= -1.9 (needs >= 50 seeds and >= 100 steps)"),
            Claim("lola_cooperate", "LOLA pairs learn to cooperate in the IPD.",
                  "LOLA-Ex -1.06 (sd 0.19) per step, 81.0% TFT (Table 1)",
                  "mean final reward >= -1.2 and >= 70% of runs with both rewards > -1.2 "
                  "(needs >= 50 seeds and >= 100 steps)"),
            Claim("mp_nash", "In matching pennies LOLA converges to the Nash equilibrium; naive learners do not.",
                  "converged to Nash: LOLA-Ex 98.8%, NL-Ex 0% (Table 1)",
                  "a run converged when all 10 probabilities are within 0.1 of 1/2 at the end; "
                  "LOLA >= 80% and NL <= 10% (needs >= 50 seeds and >= 100 steps)"),
            Claim("pg_like_exact", "LOLA with policy gradients (DiCE) moves the same way as exact LOLA.",
                  "IPD reward per step: LOLA-PG -1.17, NL-PG -1.98 (Table 1)",
                  "LOLA-PG mean final reward >= NL-PG + 0.3, and the median cosine between the DiCE and "
                  "exact LOLA updates at initialization >= 0.5 (needs >= 16 seeds and >= 100 steps)"),
        ]

    def run(self, preset: LolaPreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        out_dir = Path(out_dir)
        claims = {c.id: c for c in self.claims()}
        seeds = [seed * 100_000 + i for i in range(preset.seeds)]
        enough = preset.seeds >= 50 and preset.steps >= 100
        ckpt = out_dir / "checkpoints"
        common = dict(steps=preset.steps, seeds=seeds, lr=preset.lr, opponent_lr=preset.opponent_lr,
                      resume=resume, show_progress=True)
        game, pennies = ipd(), matching_pennies()
        runs = {
            "NL-Ex": train(game, "naive", "naive", checkpoint=ckpt / "ipd_nl.pt", **common),
            "LA-Ex": train(game, "lookahead", "lookahead", checkpoint=ckpt / "ipd_la.pt", **common),
            "LOLA-Ex": train(game, "lola", "lola", checkpoint=ckpt / "ipd_lola.pt", **common),
        }
        mp_nl = train(pennies, "naive", "naive", checkpoint=ckpt / "mp_nl.pt", **common)
        mp_lola = train(pennies, "lola", "lola", checkpoint=ckpt / "mp_lola.pt", **common)
        metrics: dict = {}

        nl = runs["NL-Ex"]
        nl_mean, nl_half = mean_interval(nl.final_rewards().mean(-1))
        nl_sd = float(nl.final_rewards().mean(-1).std())
        nl_tft = float(_tft_like(nl).double().mean())
        claims["nl_defect"].decide(
            f"{nl_mean:.3f} ± {nl_half:.3f} (sd {nl_sd:.2f}) per step over {len(seeds)} runs; {100 * nl_tft:.1f}% TFT-like",
            nl_mean <= -1.9, conclusive=enough)
        lola = runs["LOLA-Ex"]
        lola_r = lola.final_rewards()
        lola_mean, lola_half = mean_interval(lola_r.mean(-1))
        lola_sd = float(lola_r.mean(-1).std())
        coop = float(_cooperating(lola_r).double().mean())
        lola_tft = float(_tft_like(lola).double().mean())
        claims["lola_cooperate"].decide(
            f"{lola_mean:.3f} ± {lola_half:.3f} (sd {lola_sd:.2f}); {100 * coop:.1f}% of runs cooperate; "
            f"{100 * lola_tft:.1f}% TFT-like",
            lola_mean >= -1.2 and coop >= 0.7, conclusive=enough,
            note="TFT-like here: both agents P(C|CC) > .5, P(C|CD) < .5, P(C|DD) < .5 (the paper does not state its rule).")
        nash_lola, nash_nl = float(_at_nash(mp_lola).double().mean()), float(_at_nash(mp_nl).double().mean())
        claims["mp_nash"].decide(f"converged: LOLA {100 * nash_lola:.1f}%, NL {100 * nash_nl:.1f}%",
                                 nash_lola >= 0.8 and nash_nl <= 0.1, conclusive=enough)
        metrics.update(nl_mean=nl_mean, lola_mean=lola_mean, lola_cooperating=coop, lola_tft=lola_tft,
                       nl_tft=nl_tft, mp_nash_lola=nash_lola, mp_nash_nl=nash_nl,
                       la_mean=float(runs["LA-Ex"].final_rewards().mean()))

        pg_seeds = [seed * 100_000 + i for i in range(preset.pg_seeds)]
        pg_common = dict(steps=preset.pg_steps, seeds=pg_seeds, lr=preset.lr, opponent_lr=preset.opponent_lr,
                         estimator="dice", batch_size=preset.pg_batch, horizon=preset.pg_horizon,
                         resume=resume, show_progress=True)
        runs["NL-PG"] = train(game, "naive", "naive", checkpoint=ckpt / "ipd_nl_pg.pt", **pg_common)
        runs["LOLA-PG"] = train(game, "lola", "lola", checkpoint=ckpt / "ipd_lola_pg.pt", **pg_common)
        cosine = self._pg_cosine(game, pg_seeds, preset, seed)
        pg_lola = float(runs["LOLA-PG"].final_rewards().mean())
        pg_nl = float(runs["NL-PG"].final_rewards().mean())
        pg_coop = float(_cooperating(runs["LOLA-PG"].final_rewards()).double().mean())
        claims["pg_like_exact"].decide(
            f"LOLA-PG {pg_lola:.3f}, NL-PG {pg_nl:.3f} per step over {len(pg_seeds)} runs "
            f"({100 * pg_coop:.0f}% LOLA-PG runs cooperate); median cosine to exact LOLA update {cosine:.2f}",
            pg_lola >= pg_nl + 0.3 and cosine >= 0.5,
            conclusive=preset.pg_seeds >= 16 and preset.pg_steps >= 100,
            note=f"DiCE with a leave-one-out baseline, {preset.pg_batch} episodes of {preset.pg_horizon} steps "
                 f"per update; the same delta = eta = {preset.lr:g} as the exact runs.")
        metrics.update(pg_lola_mean=pg_lola, pg_nl_mean=pg_nl, pg_cosine_median=cosine, pg_lola_cooperating=pg_coop)

        table = tournament(game, seeds=[seed * 100_000 + i for i in range(preset.tournament_seeds)],
                           steps=preset.steps, lr=preset.lr, opponent_lr=preset.opponent_lr)
        metrics["tournament"] = ("Final reward per step of agent 1 (row) against agent 2 (column), IPD, "
                                 f"mean ± 95% interval over {preset.tournament_seeds} runs:\n\n" + table.table())
        self._log_curves({**runs, "MP-NL-Ex": mp_nl, "MP-LOLA-Ex": mp_lola}, out_dir / "logs")
        artifacts = [
            plot_rewards(runs, out_dir / "ipd_rewards.png", "IPD: reward per step over training (mean ± sd)"),
            plot_policies(runs["NL-Ex"], out_dir / "ipd_policy_nl.png"),
            plot_policies(runs["LOLA-Ex"], out_dir / "ipd_policy_lola.png"),
            plot_policies(mp_lola, out_dir / "mp_policy_lola.png", "matching pennies: LOLA vs LOLA"),
            plot_policies(mp_nl, out_dir / "mp_policy_nl.png", "matching pennies: naive vs naive"),
        ]
        return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics,
                      artifacts=[p.name for p in artifacts])

    @staticmethod
    def _log_curves(runs: dict[str, History], log_dir: Path) -> None:
        """Mean reward per step of every run over training, to CSV (and TensorBoard when installed)."""
        loggers = make_loggers(log_dir, "lola")
        for label, history in runs.items():
            for step, value in enumerate(history.rewards.mean(dim=(0, 2)).tolist()):
                for logger in loggers:
                    logger.log_metrics({f"{label}/reward_per_step": value}, step=step)
        for logger in loggers:
            logger.finalize("success")

    @staticmethod
    def _pg_cosine(game, seeds: list[int], preset: LolaPreset, seed: int) -> float:
        """Median over seeds of the cosine between DiCE and exact LOLA updates at initialization."""
        theta = initial_theta(seeds)
        t1, t2 = theta[:, 0], theta[:, 1]
        generator = torch.Generator().manual_seed(seed)
        dice = DiceValues(game, sample_rollouts(game, t1, t2, preset.pg_batch, preset.pg_horizon, generator))
        g_dice = lola_gradient(dice, t1, t2, preset.opponent_lr)
        g_exact = lola_gradient(exact_value_fn(game), t1, t2, preset.opponent_lr)
        return float(torch.nn.functional.cosine_similarity(g_dice, g_exact, dim=-1).median())
