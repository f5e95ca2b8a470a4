"""WaveNet generation speed on one CPU thread: the compiled loop (`etude.audio.compiled`, numba), the
torch loop, an r9y9/wavenet_vocoder-style incremental path and the naive path, as samples per CPU-second
and as ratios to real time (16,000 samples/s); and `etude audio generate --seconds 10` wall time.

Run: .venv/bin/python benchmarks/audio_generation_speed.py [--steps 8000] [--naive-steps 40] [--threads 1]
     [--out benchmarks/results]   (writes audio_generation_speed_<date>.json with the date and commit)

1. decoders: the amae quick decoder (residual 16, skip 32, 8 layers, RF 256), the long decoder
   (residual 32, skip 64, 10 layers, RF 1024) and a 12-layer one (RF 4096); 256 classes; batch 1 and
   batch 16 (samples per second counts every stream). All paths run in this one process, side by side.
   - compiled = `WaveNet.generate(backend="compiled")`: every step of every layer in one numba call per
     1,024 samples (one flat ring buffer, fused gate, inverse-CDF sampling from pre-drawn uniforms).
   - torch = `WaveNet.generate(backend="torch")`: a queue per layer, five ATen kernels per layer and step.
   - incremental = the layout of r9y9/wavenet_vocoder's `incremental_forward`: per layer an input
     buffer of (k - 1) d + 1 frames shifted by one every step, the taps read at stride d, one linear per
     1x1 conv, softmax + multinomial sampling. Written here from its description, on our weights.
   - naive = one full forward over the last receptive field per sample.
   Also the largest |compiled - full forward| and |incremental - full forward| logit difference.
2. cli: `etude audio generate --seconds 10` in a fresh process (imports and the numba cache load included)
   on an untrained hierarchy of the long preset's shape (speed does not depend on the weights' values).
Rates are per second of the thread's CPU time (`time.thread_time`; on a loaded shared machine the wall
rate measures the queue for a core, the CPU-time rate what one idle core gives) and per wall second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch
import torch.nn.functional as F

DECODERS = {"quick": dict(residual=16, skip=32, layers=8), "long": dict(residual=32, skip=64, layers=10),
            "rf4096": dict(residual=32, skip=64, layers=12)}


@torch.no_grad()
def incremental(net, steps: int, batch: int, x: torch.Tensor | None = None, generator=None) -> torch.Tensor:
    """r9y9-style incremental generation (teacher-forced on x when given); returns logits [B, classes, steps]."""
    buffers = [torch.zeros(batch, (2 - 1) * d + 1, net.residual) for d in net.dilations]
    current = torch.full((batch,), net.classes // 2, dtype=torch.long) if x is None else x[:, 0]
    outs = []
    for t in range(steps):
        h = net.embed(current)
        skip = 0
        for i, d in enumerate(net.dilations):
            buf = buffers[i]
            buf[:, :-1] = buf[:, 1:].clone()  # shift the input buffer by one frame
            buf[:, -1] = h
            taps = buf[:, 0::d]  # [B, kernel, R]: x_{t-d}, x_t
            conv = net.dilated[i]
            weight = conv.weight.permute(0, 2, 1).reshape(conv.weight.shape[0], -1)  # [2R, kernel * R]
            a = F.linear(taps.reshape(batch, -1), weight, conv.bias)
            r = net.residual
            z = torch.tanh(a[:, :r]) * torch.sigmoid(a[:, r:])
            h = h + F.linear(z, net.res[i].weight[:, :, 0], net.res[i].bias)
            skip = skip + F.linear(z, net.skips[i].weight[:, :, 0], net.skips[i].bias)
        logits = F.linear(F.relu(F.linear(F.relu(skip), net.out1.weight[:, :, 0], net.out1.bias)),
                          net.out2.weight[:, :, 0], net.out2.bias)
        outs.append(logits)
        if x is not None:
            current = x[:, min(t + 1, x.shape[1] - 1)]
        else:
            current = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]
    return torch.stack(outs, -1)


def rate(fn, samples: int) -> tuple[float, float]:
    """(samples per second of this thread's CPU time, samples per wall second) of one call of fn."""
    start, cpu = time.perf_counter(), time.thread_time()
    fn()
    return samples / (time.thread_time() - cpu), samples / (time.perf_counter() - start)


def generation(name: str, steps: int, naive_steps: int) -> dict:
    from etude.audio import WaveNet

    torch.manual_seed(0)
    net = WaveNet(256, **DECODERS[name]).eval()
    rf = net.receptive_field
    g = torch.Generator().manual_seed(0)
    net.generate(50, generator=g, backend="compiled")  # compile or load from numba's cache
    row: dict = {"decoder": name, **DECODERS[name], "receptive_field": rf}
    runs = {
        "compiled_b1": (lambda: net.generate(steps, generator=g, backend="compiled"), steps),
        "compiled_b16": (lambda: net.generate(steps // 4, batch=16, generator=g, backend="compiled"), 4 * steps),
        "torch_b1": (lambda: net.generate(steps // 8, generator=g, backend="torch"), steps // 8),
        "torch_b16": (lambda: net.generate(steps // 32, batch=16, generator=g, backend="torch"), steps // 2),
        "incremental_b1": (lambda: incremental(net, steps // 16, 1, generator=g), steps // 16),
        "incremental_b16": (lambda: incremental(net, steps // 64, 16, generator=g), steps // 4),
    }
    for key, (fn, samples) in runs.items():
        row[f"{key}_per_cpu_s"], row[f"{key}_per_wall_s"] = (round(v, 1) for v in rate(fn, samples))
    x = torch.randint(256, (1, rf), generator=g)
    with torch.no_grad():
        def naive():
            nonlocal x
            for _ in range(naive_steps):
                nxt = torch.multinomial(torch.softmax(net(x)[:, :, -1], -1), 1, generator=g)
                x = torch.cat([x[:, 1:], nxt], dim=1)
        row["naive_b1_per_cpu_s"], row["naive_b1_per_wall_s"] = (round(v, 1) for v in rate(naive, naive_steps))
        probe = torch.randint(256, (1, min(rf + 64, 1200)), generator=g)
        full = net(probe)
        row["max_abs_logit_diff_compiled"] = (net.compiled_logits(probe) - full).abs().max().item()
        row["max_abs_logit_diff_torch"] = (net.cached_logits(probe) - full).abs().max().item()
        row["max_abs_logit_diff_incremental"] = (incremental(net, probe.shape[1], 1, probe) - full).abs().max().item()
    for batch in ("b1", "b16"):
        cpu = row[f"compiled_{batch}_per_cpu_s"]
        row[f"compiled_{batch}_x_real_time"] = round(cpu / 16000, 2)
        row[f"compiled_{batch}_x_torch"] = round(cpu / row[f"torch_{batch}_per_cpu_s"], 1)
        row[f"compiled_{batch}_x_incremental"] = round(cpu / row[f"incremental_{batch}_per_cpu_s"], 1)
        row[f"torch_{batch}_x_real_time"] = round(row[f"torch_{batch}_per_cpu_s"] / 16000, 3)
    return row


def cli_generate(seconds: float = 10.0) -> dict:
    """Wall time of `etude audio generate --seconds S` in a fresh process on a long-preset-shaped hierarchy."""
    import resource
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from etude.audio import Hierarchy, HierarchyConfig, LevelConfig, save_hierarchy

    torch.manual_seed(0)
    level0 = LevelConfig(hop=8, codes=256, residual=32, skip=64, layers=10, encoder_channels=64, scalar_input=True)
    level1 = LevelConfig(classes=256, hop=8, codes=256, residual=32, skip=64, layers=8, encoder_channels=64)
    model = Hierarchy(HierarchyConfig((level0, level1), prior_residual=32, prior_layers=8)).eval()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as folder:
        save_hierarchy(Path(folder) / "hierarchy.pt", model)
        command = [sys.executable, "-m", "etude", "audio", "generate", "--checkpoint", folder, "--seconds",
                   str(seconds), "-o", str(Path(folder) / "out.wav")]
        subprocess.run(command, env=env, check=True, capture_output=True)  # numba compiles into its cache once
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"command": "etude audio generate --seconds %g (long-preset shapes: 2 levels, hops 8, 8)" % seconds,
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "audio_s": seconds,
            "x_real_time_wall": round(seconds / wall, 2), "x_real_time_cpu": round(seconds / cpu, 2),
            "output": done.stdout.strip()}


def training(name: str) -> dict:
    from etude.audio import AutoEncoder, LevelConfig

    torch.manual_seed(0)
    d = DECODERS[name]
    level = AutoEncoder(LevelConfig(hop=8, codes=256, encoder_channels=2 * d["residual"], scalar_input=True, **d))
    optimizer = torch.optim.Adam(level.parameters(), 3e-3)
    x = torch.randint(256, (4, 512) if name == "quick" else (8, 1024))
    for i in range(7):
        if i == 2:
            start = time.perf_counter()
        loss = level.losses(x)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = (time.perf_counter() - start) / 5
    return {"level": name, "batch": list(x.shape), "seconds_per_step": round(seconds, 4),
            "train_samples_per_s": round(x.numel() / seconds, 1)}


def main() -> None:
    import datetime
    import subprocess
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8000, help="samples generated by the compiled path at batch 1")
    parser.add_argument("--naive-steps", type=int, default=40, help="samples generated by the naive path")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"), help="folder for the JSON record")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    rows = [generation(name, args.steps, args.naive_steps) for name in DECODERS]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    import numba

    record = {"benchmark": "audio_generation_speed", "date": datetime.date.today().isoformat(), "commit": commit,
              "settings": vars(args), "torch": torch.__version__, "numba": numba.__version__,
              "platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
              "generation": rows, "cli": cli_generate(10.0), "training": [training("quick"), training("long")],
              "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)]}
    text = json.dumps(record, indent=1)
    print(text)
    path = Path(args.out) / f"audio_generation_speed_{record['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


if __name__ == "__main__":
    main()
