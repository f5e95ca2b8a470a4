"""Speed of etude.similarity against google/svcca, a NumPy linear CKA and the bare BLAS/LAPACK floor.

One process, one thread (OMP/MKL/OpenBLAS set to 1 before NumPy and torch load, threadpoolctl and
torch.set_num_threads(1) on top), CPU time per call (time.process_time: with one thread it is
insensitive to other processes sharing the machine), best of ``--repeats``, the implementations
interleaved within each repeat. Each side gets the layout it expects, prepared outside the timing.

- google/svcca (https://github.com/google/svcca, cca_core.py and pwcca.py): read at run time from a
  git directory (``--svcca-git``, e.g. the one the ``fetch`` tool makes) into a scratch folder and
  imported from there; its code is never copied into this repository. Mean CCA is
  ``get_cca_similarity(x.T, y.T, threshold=0.98, compute_coefs=False)["mean"][0]``, PWCCA
  ``compute_pwcca(x.T, y.T)[0]``; against etude's ``mean_cca(x, y, threshold=0.98)`` and ``pwcca(x, y)``.
- NumPy linear CKA: written here from Kornblith et al. 2019 (arXiv:1905.00414) Eq. 5 in feature
  space, centring then ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), the form of the paper's colab.
- floor: the bare BLAS/LAPACK calls each metric needs, on the same arrays (scipy.linalg.blas/lapack):
  CKA: dsyrk(X), dsyrk(Y), dgemm(X^T Y). Mean CCA: those plus dpotrf and dtrtri of both Grams,
  the two p^3 products of M = L_x^{-1} C L_y^{-T} and dgesdd(M) for values only. PWCCA: the three
  n-sized products, dsyevd of both Grams, the two p^3 products of M = V_x^T C V_y, M M^T and its
  dsyevd, a QR of the p x p weights' basis and the p^3 product that gives the weights. No checks,
  no centring, no scaling.

Inputs are centred ReLU/tanh layers of one shared latent (as google/svcca's PWCCA needs centred
inputs); ``--offset`` adds a large constant to every neuron (mean^2 > variance) so etude's explicit
centring path is timed too.

    python benchmarks/similarity_speed.py --svcca-git /work/.mirror/google+svcca/repo \\
        [--sizes 2000x100 10000x500 50000x1000] [--repeats 3] [--metrics linear_cka] [--out benchmarks/results/...json]

Prints one JSON line (settings, versions, commit, CPU seconds, ratios, values) on stdout and a
readable table on stderr; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import torch  # noqa: E402
from scipy.linalg import blas, lapack  # noqa: E402
from provenance import commit  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from etude.similarity import linear_cka, mean_cca, pairwise, pwcca  # noqa: E402


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


def load_svcca(git_dir: str, scratch: Path) -> tuple[object, object, str]:
    """google/svcca's cca_core and pwcca modules, written from `git_dir` into `scratch` and imported."""
    for name in ("cca_core.py", "pwcca.py"):
        text = subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{name}"], capture_output=True,
                              text=True, check=True).stdout
        (scratch / name).write_text(text)
    commit = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    sys.path.insert(0, str(scratch))
    return importlib.import_module("cca_core"), importlib.import_module("pwcca"), commit


def numpy_linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. 2019 Eq. 5 in feature space: centre, ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)."""
    x = x - x.mean(0, keepdims=True)
    y = y - y.mean(0, keepdims=True)
    cross = np.linalg.norm(x.T @ y) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def _grams(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gx = blas.dsyrk(1.0, x.T, trans=0)  # x.T is X^T in Fortran order: no copy
    gy = blas.dsyrk(1.0, y.T, trans=0)
    c = blas.dgemm(1.0, x.T, y.T, trans_b=1)
    return gx, gy, c


def floor_cka(x: np.ndarray, y: np.ndarray) -> None:
    _grams(x, y)


def floor_mean_cca(x: np.ndarray, y: np.ndarray) -> None:
    gx, gy, c = _grams(x, y)
    lx, _ = lapack.dpotrf(gx, lower=0)
    ly, _ = lapack.dpotrf(gy, lower=0)
    ix, _ = lapack.dtrtri(lx, lower=0)
    iy, _ = lapack.dtrtri(ly, lower=0)
    m = blas.dgemm(1.0, blas.dgemm(1.0, ix, c, trans_a=1), iy)
    lapack.dgesdd(m, compute_uv=0)


def floor_pwcca(x: np.ndarray, y: np.ndarray) -> None:
    gx, gy, c = _grams(x, y)
    _, vx, _ = lapack.dsyevd(gx, lower=0)
    _, vy, _ = lapack.dsyevd(gy, lower=0)
    m = blas.dgemm(1.0, blas.dgemm(1.0, vx, c, trans_a=1), vy)
    _, u, _ = lapack.dsyevd(blas.dsyrk(1.0, m), lower=0)
    lapack.dgeqrf(u)
    blas.dgemm(1.0, u, vx, trans_a=1, trans_b=1)  # the weights' product |Q^T Lambda^1/2 V^T|, p^3


def cpu_timed(fn, calls: int, store: list) -> object:
    """Append the CPU seconds per call of `calls` calls to `store`; return the last value."""
    start = time.process_time()
    for _ in range(calls):
        value = fn()
    store.append((time.process_time() - start) / calls)
    return value


def bench_size(n: int, p: int, repeats: int, svcca: tuple[object, object], offset: float,
               metrics: tuple[str, ...] = ("mean_cca", "pwcca", "linear_cka"), budget_s: float = 0.0) -> dict:
    cca_core, pwcca_mod = svcca
    x, y = layers(0, n, [p, p])
    if offset:
        x, y = x + offset, y + offset
    xt, yt = np.ascontiguousarray(x.T), np.ascontiguousarray(y.T)  # google/svcca's layout: neurons x datapoints
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def svcca_mean() -> float:
        return float(cca_core.get_cca_similarity(xt, yt, epsilon=0.0, threshold=0.98, compute_coefs=False,
                                                 compute_dirns=False, verbose=False)["mean"][0])

    cases = {
        "mean_cca": ({"etude": lambda: mean_cca(tx, ty, threshold=0.98), "google_svcca": svcca_mean,
                      "floor": lambda: floor_mean_cca(x, y)}),
        "pwcca": ({"etude": lambda: pwcca(tx, ty), "google_svcca": lambda: float(pwcca_mod.compute_pwcca(xt, yt)[0]),
                   "floor": lambda: floor_pwcca(x, y)}),
        "linear_cka": ({"etude": lambda: linear_cka(tx, ty), "numpy_cka": lambda: numpy_linear_cka(x, y),
                        "floor": lambda: floor_cka(x, y)}),
    }
    out: dict = {"n": n, "p": p, "offset": offset}
    for metric, fns in cases.items():
        if metric not in metrics:
            continue
        times: dict[str, list[float]] = {k: [] for k in fns}
        values: dict[str, object] = {}
        calls = {}
        first = {}
        for name, fn in fns.items():  # a first call each (not timed): calls per timing >= 0.25 s of CPU
            start = time.process_time()
            fn()
            first[name] = max(time.process_time() - start, 1e-4)
            calls[name] = max(1, min(200, int(0.25 / first[name])))
        round_s = sum(calls[k] * first[k] for k in fns)  # one timing of every function
        for _ in range(max(repeats, int(budget_s / round_s))):  # small sizes: more repeats within the budget
            for name, fn in fns.items():
                values[name] = cpu_timed(fn, calls[name], times[name])
        best = {k: min(v) for k, v in times.items()}
        peer = next(k for k in fns if k not in ("etude", "floor"))
        row = {"cpu_s": {k: round(v, 5) for k, v in best.items()}, "all_cpu_s": times, "calls_per_timing": calls,
               "peer": peer,
               "etude_over_peer": round(best["etude"] / best[peer], 3),
               "etude_over_floor": round(best["etude"] / best["floor"], 3),
               "value": {k: v for k, v in values.items() if k != "floor"}}
        row["abs_diff"] = abs(float(values["etude"]) - float(values[peer]))
        out[metric] = row
        print(f"{n}x{p}{' +offset' if offset else ''} {metric}: etude {best['etude']:.4f} s, {peer} "
              f"{best[peer]:.4f} s, floor {best['floor']:.4f} s; etude/peer {row['etude_over_peer']:.2f}, "
              f"etude/floor {row['etude_over_floor']:.2f}, |diff| {row['abs_diff']:.1e}", file=sys.stderr,
              flush=True)
    return out


def bench_shared(n: int, p: int, k: int) -> dict:
    """pairwise over K layers with three metrics at once against three single-metric calls (CPU seconds)."""
    reps = [torch.from_numpy(r) for r in layers(1, n, [p] * k)]
    start = time.process_time()
    together = pairwise(reps, ("cca", "pwcca", "cka"))
    shared = time.process_time() - start
    start = time.process_time()
    apart = {m: pairwise(reps, m) for m in ("cca", "pwcca", "cka")}
    separate = time.process_time() - start
    diff = max(float(np.abs(together[m] - apart[m]).max()) for m in apart)
    print(f"pairwise {k} layers {n}x{p}, cca+pwcca+cka: one call {shared:.2f} s, three calls {separate:.2f} s, "
          f"max |diff| {diff:.1e}", file=sys.stderr, flush=True)
    return {"k": k, "n": n, "p": p, "one_call_cpu_s": round(shared, 4), "three_calls_cpu_s": round(separate, 4),
            "ratio": round(shared / separate, 3), "max_abs_diff": diff}



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svcca-git", required=True, help="git directory of google/svcca (bare or .git)")
    parser.add_argument("--sizes", nargs="+", default=["2000x100", "10000x500", "50000x1000"])
    parser.add_argument("--offset-sizes", nargs="*", default=["10000x500"],
                        help="sizes also timed with a large offset on every neuron (explicit centring)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each function per size, at least")
    parser.add_argument("--budget-s", type=float, default=20.0,
                        help="CPU seconds per size and metric: small sizes repeat until they fill it (min over more "
                             "timings is steadier on a shared machine)")
    parser.add_argument("--metrics", nargs="+", default=["mean_cca", "pwcca", "linear_cka"],
                        choices=["mean_cca", "pwcca", "linear_cka"], help="which rows to time (all by default)")
    parser.add_argument("--shared", default="5000x256x6", help="NxPxK for the multi-metric pairwise figure ('' skips)")
    parser.add_argument("--out", default=None, help="also write the JSON record here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    limits = threadpool_limits(1)
    with tempfile.TemporaryDirectory(prefix="svcca_scratch_") as scratch:
        cca_core, pwcca_mod, svcca_commit = load_svcca(args.svcca_git, Path(scratch))
        warm = layers(9, 200, [8, 8])
        mean_cca(warm[0], warm[1]), pwcca(warm[0], warm[1]), linear_cka(warm[0], warm[1])  # imports, first calls
        record = {
            "benchmark": "similarity_speed", "date": datetime.date.today().isoformat(), "commit": commit(),
            "settings": vars(args), "google_svcca_commit": svcca_commit,
            "versions": {"torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                         "python": sys.version.split()[0]},
            "threads": {"torch": torch.get_num_threads(), "threadpoolctl": threadpool_info()},
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")},
            "load_average_before": os.getloadavg(), "cpu_count": os.cpu_count(), "sizes": [],
        }
        for size in args.sizes:
            n, p = map(int, size.lower().split("x"))
            record["sizes"].append(bench_size(n, p, args.repeats, (cca_core, pwcca_mod), 0.0, tuple(args.metrics),
                                             args.budget_s))
        for size in args.offset_sizes:
            n, p = map(int, size.lower().split("x"))
            record["sizes"].append(bench_size(n, p, args.repeats, (cca_core, pwcca_mod), 10.0, tuple(args.metrics),
                                             args.budget_s))
    if args.shared:
        n, p, k = map(int, args.shared.lower().split("x"))
        record["pairwise_shared"] = bench_shared(n, p, k)
    record["load_average_after"] = os.getloadavg()
    limits.restore_original_limits()
    line = json.dumps(record)
    print(line)
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
