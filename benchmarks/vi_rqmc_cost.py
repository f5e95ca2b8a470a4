"""Cost of one RQMC gradient step against an MC step of the same N, and variance reduction per second.

Run: .venv/bin/python benchmarks/vi_rqmc_cost.py [--sizes 16 256] [--repeats 30] [--replicates 50] [--threads 1]

For each model of ``etude.vi.MODELS`` (mean-field q at initialization, sigma = 0.1) and each N, one step
is: draw N base normals, the reparameterized ELBO, backward, an Adam update. It is timed with MC,
RQMC with a fresh scramble per step ('scramble') and RQMC with one scramble plus a fresh digital
shift per step ('shift'), interleaved step by step and timed in thread CPU time (so that other jobs
on a shared machine distort less); the cost ratio is the median over rounds of
t_RQMC / t_MC (median and min step times also given). Target: an RQMC step within 1.2x of an MC
step. The efficiency (with median step times) is
(tr Var_MC * t_MC) / (tr Var_RQMC * t_RQMC): how much less variance RQMC buys per second of steps.
Prints one JSON line per (model, N) and a summary line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from etude.vi import MODELS, MeanFieldGaussian, elbo, gradient_replicates, load_diabetes, make_model
from etude.vi.analysis import trace_variance
from etude.vi.models import BayesianNeuralNetwork
from etude.vi.qmc import MC, RQMC
from etude.vi.train import Adam

SAMPLERS = {"mc": lambda d: MC(d, seed=0), "rqmc-scramble": lambda d: RQMC(d, seed=0),
            "rqmc-shift": lambda d: RQMC(d, seed=0, randomization="shift")}


def step_times(model, n: int, repeats: int, dtype: torch.dtype) -> dict[str, list[float]]:
    """CPU seconds (this thread) of `repeats` optimizer steps per sampler, interleaved (one step of each sampler
    per round, after 3 warm-up rounds) so that a shared machine's load hits every sampler alike."""
    runs = {}
    for kind, make in SAMPLERS.items():
        loc = model.initial_loc(torch.Generator().manual_seed(0)).to(dtype)
        family = MeanFieldGaussian(model.dim, loc=loc, scale=0.1, dtype=dtype)
        runs[kind] = (family, make(model.dim), Adam(family.parameters(), lr=1e-3))
    times: dict[str, list[float]] = {kind: [] for kind in runs}
    for i in range(repeats + 3):
        for kind, (family, sampler, opt) in runs.items():
            start = time.thread_time()  # CPU time of this thread: robust to other jobs on a shared machine
            value = elbo(model, family, sampler, n)
            opt.zero_grad()
            (-value).backward()
            opt.step()
            if i >= 3:
                times[kind].append(time.thread_time() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[16, 256])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--replicates", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ratios, efficiencies = [], []
    for name in args.models:
        model = BayesianNeuralNetwork(*load_diabetes(torch.float32)) if name == "bnn" else make_model(name)
        dtype = torch.float32 if name == "bnn" else torch.float64
        for n in args.sizes:
            timing = step_times(model, n, args.repeats, dtype)
            median = {k: statistics.median(v) for k, v in timing.items()}
            paired = {k: statistics.median(a / b for a, b in zip(timing[k], timing["mc"]))
                      for k in ("rqmc-scramble", "rqmc-shift")}
            family = MeanFieldGaussian(model.dim, loc=model.initial_loc(torch.Generator().manual_seed(0)).to(dtype),
                                       scale=0.1, dtype=dtype)
            chunk = 256 if name == "bnn" else 4096
            var = {k: trace_variance(gradient_replicates(model, family, make(model.dim), n, args.replicates,
                                                         max_points=chunk))[0] for k, make in SAMPLERS.items()}
            row = {"model": name, "dim": model.dim, "n": n,
                   "step_ms_median": {k: round(1e3 * v, 3) for k, v in median.items()},
                   "step_ms_min": {k: round(1e3 * min(v), 3) for k, v in timing.items()},
                   "cost_ratio": {k: round(v, 3) for k, v in paired.items()},
                   "variance_ratio": {k: round(var["mc"] / var[k], 2) for k in ("rqmc-scramble", "rqmc-shift")},
                   "efficiency": {k: round(var["mc"] * median["mc"] / (var[k] * median[k]), 2)
                                  for k in ("rqmc-scramble", "rqmc-shift")}}
            ratios.append(row["cost_ratio"])
            efficiencies.append(row["efficiency"])
            print(json.dumps(row), flush=True)
    print(json.dumps({
        "benchmark": "vi_rqmc_cost", "sizes": args.sizes, "repeats": args.repeats, "replicates": args.replicates,
        "threads": args.threads, "max_cost_ratio": {k: max(r[k] for r in ratios) for k in ratios[0]},
        "min_efficiency": {k: min(e[k] for e in efficiencies) for k in efficiencies[0]},
        "torch": torch.__version__, "machine": platform.machine()}))


if __name__ == "__main__":
    main()
