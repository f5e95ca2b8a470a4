"""One GPU check: every study's smoke preset on cuda, then the throughput figures, as one JSON file.

    bash benchmarks/gpu_check.sh [--out gpu_check.json]     # on a machine with an NVIDIA GPU
    python benchmarks/gpu_check.py --device cpu --quick     # dry run of the same code on the CPU

Figures: WaveNet cached generation (samples/s, batch 1 and 16, 10 layers, 32 channels, receptive
field 1024), Music Transformer generation tokens/s (batch 1 and 8, KV cache) and training tokens/s,
PWCCA of 4096 x 2048 activations on the device against the CPU, and one RQMC ELBO gradient step
against an MC step. Each part is timed and bounded; a part that fails is recorded with its error
and the others still run. The whole check is meant to finish within 8 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn: Callable[[], Any], repeats: int = 3) -> float:
    """Best wall time of `repeats` calls after one warm-up call."""
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def smoke_studies(device: str, timeout: float) -> dict[str, Any]:
    """`etude reproduce <study> --preset smoke` per study, on `device` where the preset has a device field."""
    from dataclasses import fields

    from etude.studies import get_study, study_names

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in study_names():
            has_device = any(f.name == "device" for f in fields(get_study(name).preset("smoke")))
            cmd = [sys.executable, "-m", "etude", "reproduce", name, "--preset", "smoke", "--out", tmp]
            cmd += ["--set", f"device={device}"] if has_device else []
            start = time.perf_counter()
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                                      env={**os.environ, "ETUDE_PROGRESS": "0"})
                result = json.loads((Path(tmp) / name / "result.json").read_text())
                out[name] = {"exit": done.returncode, "status": result["status"], "device": device if has_device
                             else "cpu (the smoke preset has no device field)",
                             "wall_s": round(time.perf_counter() - start, 2),
                             "error": result.get("error", "").splitlines()[:1]}
            except (subprocess.TimeoutExpired, OSError, ValueError) as exc:
                out[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return out


def wavenet_generation(device: torch.device, samples: int) -> dict[str, Any]:
    from etude.audio import WaveNet

    net = WaveNet(layers=10).to(device).eval()
    figures: dict[str, Any] = {"receptive_field": net.receptive_field, "samples": samples}
    for batch in (1, 16):
        seconds = _timed(device, lambda: net.generate(samples, batch=batch), repeats=1)
        figures[f"batch{batch}_samples_per_s"] = round(batch * samples / seconds, 1)
        figures[f"batch{batch}_x_realtime_16k"] = round(batch * samples / seconds / 16000, 3)
    return figures


def music_transformer(device: torch.device, tokens: int, train_steps: int) -> dict[str, Any]:
    from etude.music import TransformerAutoencoder, TransformerConfig
    from etude.music.generate import generate
    from etude.music.training import Crops, fit

    cfg = TransformerConfig(dim=256, heads=8, layers=4, ff=1024, max_len=max(tokens, 512))
    model = TransformerAutoencoder(cfg, conditioning="none").to(device).eval()
    figures: dict[str, Any] = {"dim": 256, "layers": 4, "tokens": tokens}
    for batch in (1, 8):
        seconds = _timed(device, lambda: generate(model, batch, max_length=tokens, eos=None, show_progress=False),
                         repeats=1)
        figures[f"generate_batch{batch}_tokens_per_s"] = round(batch * (tokens - 1) / seconds, 1)
    g = torch.Generator().manual_seed(0)
    crops = Crops(torch.randint(1, 388, (64, 511), generator=g).to(device),
                  torch.randint(1, 90, (64, 512), generator=g).to(device))
    start = time.perf_counter()
    fit(model.train(), crops, steps=train_steps, batch_size=16, lr=1e-4, seed=0, show_progress=False)
    _sync(device)
    figures["train_tokens_per_s"] = round(train_steps * 16 * 511 / (time.perf_counter() - start), 1)
    return figures


def pwcca_speed(device: torch.device, n: int, p: int) -> dict[str, Any]:
    from etude.similarity import pwcca

    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, 64, generator=g, dtype=torch.float64)
    a = torch.tanh(z @ torch.randn(64, p, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, p, generator=g, dtype=torch.float64))
    b = torch.relu(z @ torch.randn(64, p, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, p, generator=g, dtype=torch.float64))
    cpu_s = _timed(torch.device("cpu"), lambda: pwcca(a, b), repeats=1)
    da, db = a.to(device), b.to(device)
    dev_s = _timed(device, lambda: pwcca(da, db), repeats=2)
    return {"n": n, "p": p, "cpu_s": round(cpu_s, 3), "device_s": round(dev_s, 3), "speedup": round(cpu_s / dev_s, 2),
            "same_value": abs(float(pwcca(a, b)) - float(pwcca(da, db))) < 1e-8}


def rqmc_step(device: torch.device, n: int) -> dict[str, Any]:
    from etude.vi import MC, RQMC, MeanFieldGaussian, elbo, make_model

    with torch.device(device):
        model = make_model("logistic")
        figures: dict[str, Any] = {"model": "logistic", "n": n}
        for name, sampler in (("mc", MC(model.dim, seed=0)), ("rqmc", RQMC(model.dim, seed=0))):
            family = MeanFieldGaussian(model.dim, scale=0.1)

            def step() -> None:
                value = elbo(model, family, sampler, n)
                (-value).backward()

            figures[f"{name}_step_ms"] = round(1000 * _timed(device, step, repeats=20), 3)
    figures["rqmc_over_mc"] = round(figures["rqmc_step_ms"] / figures["mc_step_ms"], 3)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--quick", action="store_true", help="small sizes (a dry run on the CPU)")
    parser.add_argument("--skip-smoke", action="store_true")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here (torch.cuda.is_available() is False; torch "
              f"{torch.__version__}); run it on a machine with an NVIDIA GPU, or pass --device cpu for a dry run",
              file=sys.stderr)
        return 2
    device = torch.device(args.device)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": args.device, "torch": torch.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }
    small = args.quick
    parts: dict[str, Callable[[], Any]] = {
        "smoke": lambda: smoke_studies(args.device, timeout=120),
        "wavenet_generation": lambda: wavenet_generation(device, 2000 if small else 16000),
        "music_transformer": lambda: music_transformer(device, 64 if small else 1024, 3 if small else 30),
        "pwcca": lambda: pwcca_speed(device, 512 if small else 4096, 128 if small else 2048),
        "rqmc_step": lambda: rqmc_step(device, 64 if small else 1024),
    }
    if args.skip_smoke:
        parts.pop("smoke")
    for name, part in parts.items():
        start = time.perf_counter()
        try:
            report[name] = part()
        except Exception as exc:  # one failing part must not hide the others' figures
            report[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        report[name + "_wall_s"] = round(time.perf_counter() - start, 2)
        print(f"gpu_check: {name} done in {report[name + '_wall_s']} s", file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
