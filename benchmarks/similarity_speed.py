"""Speed of etude.similarity against a straightforward NumPy float64 implementation of the same formulas.

The baseline (tests/similarity/similarity_reference.py) does what google/svcca's cca_core does:
np.cov of the stacked activations, pinv of each covariance block, a symmetric matrix square root
through eigh, a full SVD, and for PWCCA a QR of the (n, p) canonical directions. etude whitens
each side with one eigendecomposition, takes singular values only where vectors are not needed,
computes PWCCA's weights in the p-dimensional eigenbasis, and in `pairwise` factors each
representation once.

    python benchmarks/similarity_speed.py                    # the issue's sizes (slow on 2 cores)
    python benchmarks/similarity_speed.py --pairs 5000x512 --pairwise 8 --baseline-entries 16

Prints one JSON line (settings, versions, seconds, ratios, largest differences) on stdout and a
readable summary on stderr. Inputs are centred ReLU/tanh layers of one shared latent, so the
reference's PWCCA (which needs centred inputs to be well defined) and etude's must agree.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "similarity"))
from similarity_reference import reference_cca, reference_mean, reference_pwcca  # noqa: E402

from etude.similarity import mean_cca, pairwise, pwcca  # noqa: E402


def layers(seed: int, n: int, widths: list[int], latent: int = 64, noise: float = 0.5) -> list[np.ndarray]:
    """Centred representations (n, w) of one shared latent through random nonlinear maps, plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, latent))
    out = []
    for i, w in enumerate(widths):
        pre = z @ rng.standard_normal((latent, w)) / np.sqrt(latent) + noise * rng.standard_normal((n, w))
        rep = np.maximum(pre, 0.0) if i % 2 else np.tanh(pre)
        out.append(rep - rep.mean(0))
    return out


def timed(fn, repeats: int) -> tuple[float, object]:
    """Best wall time of `repeats` calls, and the last value."""
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, value


def baseline_mean(x: np.ndarray, y: np.ndarray) -> float:
    return reference_mean(reference_cca(x, y)[1], 0.98)


def bench_pair(n: int, p: int, repeats: int, device: str) -> dict:
    x, y = layers(0, n, [p, p])
    tx, ty = (torch.from_numpy(a).to(device) for a in (x, y))
    out: dict = {"n": n, "p": p}
    for name, ours, base in (("mean_cca", lambda: mean_cca(tx, ty, threshold=0.98), lambda: baseline_mean(x, y)),
                             ("pwcca", lambda: pwcca(tx, ty), lambda: reference_pwcca(x, y))):
        t_ours, v_ours = timed(ours, repeats)
        t_base, v_base = timed(base, repeats)
        out[name] = {"etude_s": t_ours, "baseline_s": t_base, "ratio": t_base / t_ours,
                     "abs_diff": abs(v_ours - v_base), "value": v_ours}
        print(f"{n}x{p} {name}: etude {t_ours:.2f} s, baseline {t_base:.2f} s, ratio {t_base / t_ours:.1f}x, "
              f"|diff| {abs(v_ours - v_base):.1e}", file=sys.stderr, flush=True)
    return out


def bench_pairwise(k: int, n: int, p: int, baseline_entries: int | None, device: str) -> dict:
    reps = layers(1, n, [p] * k)
    treps = [torch.from_numpy(r).to(device) for r in reps]
    t_ours, matrix = timed(lambda: pairwise(treps, "pwcca"), 1)
    entries = [(i, j) for i in range(k) for j in range(k)]
    if baseline_entries is not None and baseline_entries < len(entries):
        rng = np.random.default_rng(0)
        entries = [entries[i] for i in sorted(rng.choice(len(entries), baseline_entries, replace=False))]
    start = time.perf_counter()
    diffs = [abs(reference_pwcca(reps[i], reps[j]) - matrix[i, j]) for i, j in entries]
    t_base = (time.perf_counter() - start) * k * k / len(entries)  # the K^2 calls a loop would make
    print(f"pairwise {k}x{k} of {n}x{p} (pwcca): etude {t_ours:.1f} s, baseline {t_base:.1f} s "
          f"({'all' if len(entries) == k * k else f'{len(entries)} timed entries, scaled to'} {k * k}), "
          f"ratio {t_base / t_ours:.1f}x, max |diff| {max(diffs):.1e}", file=sys.stderr, flush=True)
    return {"k": k, "n": n, "p": p, "metric": "pwcca", "etude_s": t_ours, "baseline_s": t_base,
            "baseline_entries_timed": len(entries), "ratio": t_base / t_ours, "max_abs_diff": max(diffs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="*", default=["5000x512", "4096x2048"], help="NxP sizes of single pairs")
    parser.add_argument("--pairwise", type=int, default=8, help="K for the K x K matrix of 5000x512 layers (0: skip)")
    parser.add_argument("--pairwise-size", default="5000x512")
    parser.add_argument("--baseline-entries", type=int, default=None,
                        help="time this many of the baseline's K^2 entries and scale (default: all)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch and for NumPy's BLAS (default: each library's own)")
    args = parser.parse_args()
    limits = None
    if args.threads:
        torch.set_num_threads(args.threads)
        try:  # the baseline's BLAS gets the same number of threads
            from threadpoolctl import threadpool_limits

            limits = threadpool_limits(args.threads)
        except ImportError:
            print("threadpoolctl missing: NumPy's BLAS keeps its default threads", file=sys.stderr)
    record = {"settings": vars(args), "torch_threads": torch.get_num_threads(),
              "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
                           "platform": platform.platform(), "cpu_count": __import__("os").cpu_count()},
              "pairs": [], "pairwise": None}
    for size in args.pairs:
        n, p = map(int, size.lower().split("x"))
        record["pairs"].append(bench_pair(n, p, args.repeats, args.device))
    if args.pairwise:
        n, p = map(int, args.pairwise_size.lower().split("x"))
        record["pairwise"] = bench_pairwise(args.pairwise, n, p, args.baseline_entries, args.device)
    record["limits_active"] = limits is not None
    print(json.dumps(record))


if __name__ == "__main__":
    main()
