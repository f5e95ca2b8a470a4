"""Seeds per second of batched exact LOLA against a per-seed Python loop of the same code.

Run: .venv/bin/python benchmarks/lola_batched.py [--seeds 200] [--steps 50] [--threads 1]
Both paths call `etude.games.train` with identical settings; the loop passes one seed at a time.
Prints a JSON line with both rates and their ratio, and checks the two give the same parameters.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from etude.games import ipd, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--learner", default="lola")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    game, seeds = ipd(), list(range(args.seeds))

    start = time.perf_counter()
    batched = train(game, args.learner, args.learner, steps=args.steps, seeds=seeds)
    t_batched = time.perf_counter() - start

    start = time.perf_counter()
    looped = [train(game, args.learner, args.learner, steps=args.steps, seeds=[s]) for s in seeds]
    t_loop = time.perf_counter() - start

    looped_theta = torch.cat([h.theta for h in looped])
    agree = bool(torch.allclose(batched.theta, looped_theta, atol=1e-9))
    print(json.dumps({
        "benchmark": "lola_batched", "learner": args.learner, "seeds": args.seeds, "steps": args.steps,
        "threads": args.threads, "batched_seeds_per_s": round(args.seeds / t_batched, 1),
        "loop_seeds_per_s": round(args.seeds / t_loop, 1), "ratio": round(t_loop / t_batched, 1),
        "same_parameters": agree, "torch": torch.__version__, "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
