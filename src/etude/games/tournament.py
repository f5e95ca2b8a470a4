"""Every learner against every learner: mean final reward with a 95% interval over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from etude.games.matrix import MatrixGame
from etude.games.qlearning import Q_LEARNER, train_against_q
from etude.games.training import train
from etude.statistics import mean_half_width

__all__ = ["Tournament", "tournament"]


@dataclass
class Tournament:
    """rewards[(row, column)] = final per-step rewards [seeds, 2] when `row` plays agent 1."""

    game: str
    learners: tuple[str, ...]
    rewards: dict[tuple[str, str], torch.Tensor]

    def table(self) -> str:
        """Markdown table: agent 1's (row's) mean reward and 95% interval against each column."""
        head = "| agent 1 \\ agent 2 | " + " | ".join(self.learners) + " |"
        lines = [head, "|---" * (len(self.learners) + 1) + "|"]
        for row in self.learners:
            cells = []
            for col in self.learners:
                mean, half = mean_half_width(self.rewards[(row, col)][:, 0])
                cells.append(f"{mean:.3f} ± {half:.3f}")
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def tournament(
    game: MatrixGame,
    learners: Sequence[str] = ("naive", "lookahead", "lola"),
    seeds: int | Sequence[int] = 50,
    steps: int = 200,
    lr: float = 1.0,
    opponent_lr: float = 1.0,
    q_rounds: int = 50,
) -> Tournament:
    """Train every ordered pair of learners on the same seeds and collect the final rewards.

    Pairs with an NL-Q agent ('nl-q') play `q_rounds` rounds of 200-step episodes
    (`etude.games.qlearning.train_against_q`); the others take `steps` exact updates.
    """
    rewards = {}
    for row in learners:
        for col in learners:
            if Q_LEARNER in (row, col):
                history = train_against_q(game, row, col, rounds=q_rounds, seeds=seeds, lr=lr, opponent_lr=opponent_lr)
            else:
                history = train(game, row, col, steps=steps, seeds=seeds, lr=lr, opponent_lr=opponent_lr)
            rewards[(row, col)] = history.final_rewards()
    return Tournament(game.name, tuple(learners), rewards)
