"""Coin-game speed: environment steps per second for a batch of games, and training updates per second.

Environment: `etude.games.coin.CoinGame(batch).step` with uniform random actions drawn up front,
observations included (target >= 1e6 game steps/s for 4,096 games on 2 cores). Training:
`etude.games.coin_training.train_coin` updates per second for NL-PG and LOLA-PG (each update
plays seeds x episodes x horizon game steps and differentiates the DiCE surrogate).

    python benchmarks/coin_game_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from etude.games.coin import CoinGame
from etude.games.coin_training import train_coin


def env_rate(batch: int, steps: int, repeats: int) -> tuple[float, float]:
    """Best game steps per second over `repeats`, by wall clock and by this thread's CPU time."""
    game = CoinGame(batch)
    g = torch.Generator().manual_seed(0)
    game.reset(g)
    actions = torch.randint(4, (steps, batch, 2), generator=g)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.thread_time()
        for t in range(steps):
            game.step(actions[t], g)
        best, best_cpu = min(best, time.perf_counter() - start), min(best_cpu, time.thread_time() - cpu)
    return batch * steps / best, batch * steps / best_cpu


def train_rate(learner: str, seeds: int, episodes: int, horizon: int, steps: int) -> float:
    train_coin(learner, learner, steps=1, seeds=seeds, episodes=episodes, horizon=horizon)  # warm-up
    start = time.perf_counter()
    train_coin(learner, learner, steps=steps, seeds=seeds, episodes=episodes, horizon=horizon)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--env-steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--train-steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.machine()}, {args.threads} thread(s)")
    for batch in sorted({256, 1024, args.batch}):
        wall, cpu = env_rate(batch, args.env_steps, args.repeats)
        print(f"env: batch {batch:>5}: {wall:,.0f} game steps/s (wall), {cpu:,.0f} per CPU second")
    per_update = args.seeds * args.episodes * args.horizon
    for learner in ("naive", "lola"):
        rate = train_rate(learner, args.seeds, args.episodes, args.horizon, args.train_steps)
        print(f"train {learner}: {rate:.2f} updates/s ({args.seeds} seeds x {args.episodes} episodes x "
              f"{args.horizon} steps = {per_update:,} game steps per update; {rate * per_update:,.0f} game steps/s)")


if __name__ == "__main__":
    main()
