"""Study `lola`: Foerster et al., "Learning with Opponent-Learning Awareness", AAMAS 2018.

Wiring only: presets, runs of `etude.games.training` (matrix games, opponent modelling) and
`etude.games.coin_training` (coin game), and the claims of Table 1, opponent modelling and the coin game.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from etude.games import criteria
from etude.games.experiments import (
    Runs,
    coin_note,
    coin_runs,
    exact_runs,
    log_curves,
    om_runs,
    pg_note,
    pg_runs,
    play_tournament,
    plots,
    summarize_coin,
    summarize_exact,
)
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
    """Runs per ordered pair in the naive/lookahead/LOLA/NL-Q tournament."""
    tournament_q_rounds: int = 50
    """Rounds (200-step episodes) of the pairs with an NL-Q agent (official tournament: 50)."""
    pg_seeds: int = 32
    """Runs per policy-gradient pair (DiCE estimates from sampled rollouts)."""
    pg_steps: int = 200
    """Updates per policy-gradient run."""
    pg_batch: int = 64
    """Sampled episodes per update and seed."""
    pg_horizon: int = 100
    """Length of each sampled episode."""
    om_episodes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    """Observed episode counts at which the opponent model's error is measured."""
    coin_seeds: int = 4
    """Runs per coin-game pair (NL-PG vs NL-PG, LOLA-PG vs LOLA-PG), all in one batch."""
    coin_steps: int = 20
    """Updates per coin-game run."""
    coin_episodes: int = 32
    """Games played per update and seed."""
    coin_horizon: int = 50
    """Steps per coin game."""
    coin_lr: float = 0.02
    """Adam step size of the coin-game policies."""
    coin_opponent_lr: float = 0.3
    """eta of LOLA-PG in the coin game (on the unnormalized DiCE value)."""
    coin_hidden: int = 32
    """Hidden units of the coin-game MLP policy."""


class LolaStudy(Study):
    """LOLA against naive and lookahead learners on the IPD and matching pennies."""

    name = "lola"
    title = "Learning with Opponent-Learning Awareness"
    threads = 1
    citation = "Foerster, Chen, Al-Shedivat, Whiteson, Abbeel, Mordatch. AAMAS 2018. arXiv:1709.04326"
    presets = {
        "smoke": LolaPreset(
            seeds=16,
            steps=40,
            tournament_seeds=4,
            pg_seeds=2,
            pg_steps=5,
            pg_batch=16,
            pg_horizon=20,
            tournament_q_rounds=2,
            om_episodes=(1, 4, 16),
            coin_seeds=2,
            coin_steps=2,
            coin_episodes=4,
            coin_horizon=10,
            coin_hidden=8,
        ),
        "quick": LolaPreset(),
        "long": LolaPreset(coin_seeds=10, coin_steps=1000, coin_episodes=64),
        "full": LolaPreset(
            seeds=1000,
            tournament_seeds=200,
            pg_seeds=50,
            pg_batch=128,
            pg_horizon=150,
            coin_seeds=20,
            coin_steps=4000,
            coin_episodes=256,
            coin_horizon=150,
        ),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim(
                "nl_defect",
                "Foerster et al. 2018 Table 1: two naive learners in the IPD (exact values) end in mutual defection, about -2 per step.",
                "Foerster et al. 2018 Table 1 (IPD, exact gradients): NL-Ex -1.98 (sd 0.14) per step, 20.8% TFT",
                "mean final reward per step over runs <= -1.9 (needs >= 50 runs of >= 100 updates)",
            ),
            Claim(
                "lola_cooperate",
                "Foerster et al. 2018 Table 1: two LOLA learners in the IPD (exact values) learn tit-for-tat and cooperate, about -1 per step.",
                "Foerster et al. 2018 Table 1 (IPD, exact gradients): LOLA-Ex -1.06 (sd 0.19) per step, 81.0% TFT",
                "mean final reward per step >= -1.2 and >= 70% of runs with both agents' rewards > -1.2; the final "
                "policy per state is reported, since the paper does not state its TFT rule "
                "(needs >= 50 runs of >= 100 updates)",
            ),
            Claim(
                "mp_nash",
                "Foerster et al. 2018 Table 1: in repeated matching pennies LOLA learners converge to the Nash equilibrium (1/2 in every "
                "state); naive learners do not.",
                "Foerster et al. 2018 Table 1 (matching pennies, exact gradients): % converged to Nash "
                "LOLA-Ex 98.8, NL-Ex 0.0",
                "a run is at Nash when all 10 final probabilities are within 0.1 of 1/2; LOLA >= 80% of runs and "
                "naive <= 10% (needs >= 50 runs of >= 100 updates)",
            ),
            Claim(
                "pg_like_exact",
                "Foerster et al. 2018 Table 1: with policy-gradient estimates of the LOLA update (LOLA-PG) the pairs still cooperate in "
                "the IPD, where naive policy-gradient learners (NL-PG) defect.",
                "Foerster et al. 2018, learning via policy gradient (LOLA-PG), and Table 1 (IPD): LOLA-PG -1.17, NL-PG -1.98 per step",
                "LOLA-PG mean final reward >= NL-PG + 0.3 per step, and the median cosine between the sampled (DiCE) "
                "and exact LOLA updates at initialization >= 0.5 (the estimator points the exact way; etude's "
                "addition) (needs >= 16 runs of >= 100 updates)",
            ),
            Claim(
                "lola_om",
                "Foerster et al. 2018, LOLA with opponent modeling: LOLA with opponent modelling (LOLA-OM: each agent infers the other's parameters from its "
                "actions) still learns to cooperate in the IPD.",
                "Foerster et al. 2018, LOLA with opponent modeling (maximum-likelihood estimate of the other's parameters); the official LOLA-DiCE runs with an "
                "opponent model end at -1.09 per step against -1.11 without (mean of 5 runs each, alshedivat/lola "
                "notebooks/dice/results/ipd_bs64_2inner_om/run-*/rets.npy and ipd_bs64_2inner/run-*/rets.npy)",
                "LOLA-OM mean final reward >= NL-OM + 0.3 and >= LOLA-PG - 0.2 per step "
                "(needs >= 16 runs of >= 100 updates)",
            ),
            Claim(
                "coin_own",
                "Foerster et al. 2018, coin game: in the coin game LOLA-PG agents pick a larger share of coins of their own colour than NL-PG "
                "agents, which pick indiscriminately.",
                "Foerster et al. 2018, coin game results: LOLA-PG about 80% own coins, NL-PG about 50%",
                "lower end of the 95% interval (over seeds) of LOLA-PG minus NL-PG own-colour share > 0 "
                "(needs >= 8 seeds and >= 1000 updates)",
            ),
            Claim(
                "coin_reward",
                "Foerster et al. 2018, coin game: in the coin game LOLA-PG agents earn more points than NL-PG agents.",
                "Foerster et al. 2018, coin game results: LOLA-PG agents collect more points than NL-PG agents",
                "lower end of the 95% interval (over seeds) of LOLA-PG minus NL-PG reward per step > 0 "
                "(needs >= 8 seeds and >= 1000 updates)",
            ),
        ]

    def run(self, preset: LolaPreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        """Train every pair (exact, policy gradient, opponent modelling, coin game, tournament), then decide."""
        p, out_dir = preset, Path(out_dir)
        claims, where = {c.id: c for c in self.claims()}, Runs(seed, out_dir / "checkpoints", resume)
        exact = exact_runs(p, where)
        ex = summarize_exact(exact)
        steps = (p.seeds, p.steps)
        claims["nl_defect"].decide(
            **criteria.nl_defect(ex["nl_mean"], ex["nl_half"], ex["nl_sd"], ex["nl_tft"], *steps)
        )
        claims["lola_cooperate"].decide(**criteria.lola_cooperate(
            ex["lola_mean"], ex["lola_half"], ex["lola_sd"], ex["lola_cooperating"], ex["lola_tft"],
            ex["lola_median_policy"], *steps,
        ))  # fmt: skip
        claims["mp_nash"].decide(**criteria.mp_nash(ex["mp_nash_lola"], ex["mp_nash_nl"], *steps))
        pg, om = pg_runs(p, where), om_runs(p, where)
        pg_steps = (p.pg_seeds, p.pg_steps)
        claims["pg_like_exact"].decide(**criteria.pg_cooperate(
            pg["pg_lola_mean"], pg["pg_nl_mean"], pg["pg_lola_cooperating"], pg["pg_cosine_median"], *pg_steps,
            note=pg_note(p),
        ))  # fmt: skip
        claims["lola_om"].decide(**criteria.lola_om(
            om["om_lola_mean"], om["om_nl_mean"], pg["pg_lola_mean"], om["om_lola_cooperating"], *pg_steps
        ))  # fmt: skip
        coin = coin_runs(p, where)
        for cid, key, label in (
            ("coin_own", "own_share", "own-colour share"),
            ("coin_reward", "reward", "reward per step"),
        ):
            c = summarize_coin(coin, key)
            claims[cid].decide(
                **criteria.coin_larger(label, **c, seeds=p.coin_seeds, steps=p.coin_steps, note=coin_note(p))
            )
        metrics = {k: v for k, v in ex.items() if not k.endswith(("_half", "_sd"))}
        metrics.update({k: v for k, v in {**pg, **om}.items() if k not in ("runs", "errors")})
        metrics["coin"] = {name: {k: float(v.mean()) for k, v in h.final.items()} for name, h in coin.items()}
        metrics["tournament"] = play_tournament(p, where)
        runs = {**{k: v for k, v in exact.items() if not k.startswith("MP-")}, **pg["runs"], **om["runs"]}
        log_curves({**runs, "MP-NL-Ex": exact["MP-NL-Ex"], "MP-LOLA-Ex": exact["MP-LOLA-Ex"]}, out_dir / "logs")
        artifacts = plots(p, {**runs, **exact}, om["errors"], coin, out_dir)
        return Result(
            self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=[a.name for a in artifacts]
        )
