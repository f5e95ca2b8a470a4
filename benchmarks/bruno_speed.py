"""BRUNO speed: the batched all-prefix log-probability against the streaming loop, and training images/s.

Run: .venv/bin/python benchmarks/bruno_speed.py [--batch 64] [--n 20] [--dim 64] [--threads 1]
(1) `StudentTProcess.sequence_log_prob` (cumulative sums, every position at once) against a Python
loop of `log_prob` + `update` over positions, forward and backward, and that both agree;
(2) training images per second of `train_bruno` for the study's quick-preset model (Real NVP,
hidden 8) and the no-flow model. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from etude.exchangeable import Bruno, StudentTProcess, load_digit_splits, sample_sequences, train_bruno


def _best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    process = StudentTProcess(args.dim)
    xs = torch.randn(args.batch, args.n, args.dim)

    def batched():
        process.sequence_log_prob(xs).sum().backward()

    def streaming():
        process.reset()
        out = []
        for i in range(args.n):
            out.append(process.log_prob(xs[:, i]))
            process.update(xs[:, i])
        torch.stack(out, 1).sum().backward()

    process.reset()
    loop = []
    for i in range(args.n):
        loop.append(process.log_prob(xs[:, i]))
        process.update(xs[:, i])
    with torch.no_grad():
        gap = float((torch.stack(loop, 1) - process.sequence_log_prob(xs)).abs().max())
    t_batched, t_stream = _best_of(batched, args.repeats), _best_of(streaming, args.repeats)

    splits = load_digit_splits(0)
    rates = {}
    for flow in ("realnvp", "none"):
        model = Bruno.build(flow=flow, hidden=8)
        batch, length = 8, 20

        def batches(g):
            return sample_sequences(splits.train_x, splits.train_y, batch, length, g)[0]

        train_bruno(model, batches, 3)  # warm-up
        start = time.perf_counter()
        train_bruno(model, batches, args.train_steps)
        rates[flow] = round(args.train_steps * batch * length / (time.perf_counter() - start), 1)

    print(json.dumps({
        "benchmark": "bruno_speed", "batch": args.batch, "n": args.n, "dim": args.dim, "threads": args.threads,
        "batched_ms": round(1000 * t_batched, 3), "streaming_ms": round(1000 * t_stream, 3),
        "ratio": round(t_stream / t_batched, 1), "max_abs_diff": gap,
        "train_images_per_s": rates, "train_batch": "8 sequences x 20 images",
        "torch": torch.__version__, "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
