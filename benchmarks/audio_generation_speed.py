"""Cached WaveNet generation speed against real time (16,000 samples/s), the naive path, and an
r9y9/wavenet_vocoder-style incremental path; training samples per second.

Run: .venv/bin/python benchmarks/audio_generation_speed.py [--steps 2000] [--naive-steps 40] [--threads 1]

1. decoders: the amae quick decoder (residual 16, skip 32, 8 layers, RF 256), the long decoder
   (residual 32, skip 64, 10 layers, RF 1024) and a 12-layer one (RF 4096); 256 classes; batch 1 and
   batch 16 (samples per second counts every stream).
   - cached = `WaveNet.generate`: a queue per layer, one fused step (five kernels per layer on
     preallocated buffers, the skip sum in one matmul), Gumbel-max sampling with noise drawn in chunks.
   - incremental = the layout of r9y9/wavenet_vocoder's `incremental_forward`: per layer an input
     buffer of (k - 1) d + 1 frames shifted by one every step, the taps read at stride d, one linear per
     1x1 conv, softmax + multinomial sampling. Written here from its description, on our weights.
   - naive = one full forward over the last receptive field per sample.
   Also the largest |cached - full forward| and |incremental - full forward| logit difference.
2. training: samples per second of Adam steps of the quick and long level-0 AMAE levels.
Rates are given per wall second and per second of the thread's CPU time (`time.thread_time`): on a
loaded shared machine the wall rate measures the queue for a core, the CPU-time rate what one idle
core gives. Prints one JSON line with settings, versions, the load average and figures.
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


CPU_RATES: dict[str, float] = {}


def rate(fn, samples: int, key: str = "") -> float:
    """Samples per wall second; also stores samples per second of this thread's CPU time in CPU_RATES[key]
    (on a shared, loaded machine the CPU-time rate is what an idle core would give)."""
    start, cpu = time.perf_counter(), time.thread_time()
    fn()
    CPU_RATES[key] = samples / (time.thread_time() - cpu)
    return samples / (time.perf_counter() - start)


def generation(name: str, steps: int, naive_steps: int) -> dict:
    from etude.audio import WaveNet

    torch.manual_seed(0)
    net = WaveNet(256, **DECODERS[name]).eval()
    rf = net.receptive_field
    g = torch.Generator().manual_seed(0)
    net.generate(50, generator=g)  # warm-up
    row = {"decoder": name, **DECODERS[name], "receptive_field": rf}
    row["cached_b1"] = rate(lambda: net.generate(steps, generator=g), steps, "cached_b1")
    row["cached_b16"] = rate(lambda: net.generate(steps // 4, batch=16, generator=g), 16 * (steps // 4), "cached_b16")
    row["incremental_b1"] = rate(lambda: incremental(net, steps // 4, 1, generator=g), steps // 4, "incremental_b1")
    x = torch.randint(256, (1, rf), generator=g)
    with torch.no_grad():
        def naive():
            nonlocal x
            for _ in range(naive_steps):
                nxt = torch.multinomial(torch.softmax(net(x)[:, :, -1], -1), 1, generator=g)
                x = torch.cat([x[:, 1:], nxt], dim=1)
        row["naive_b1"] = rate(naive, naive_steps, "naive_b1")
        probe = torch.randint(256, (1, min(rf + 64, 1200)), generator=g)
        full = net(probe)
        row["max_abs_logit_diff_cached"] = (net.cached_logits(probe) - full).abs().max().item()
        row["max_abs_logit_diff_incremental"] = (incremental(net, probe.shape[1], 1, probe) - full).abs().max().item()
    row.update({k: round(v, 1) for k, v in row.items() if k.endswith(("_b1", "_b16"))})
    row.update({f"{k}_per_cpu_s": round(v, 1) for k, v in CPU_RATES.items()})
    row["real_time_ratio_b1_wall"] = round(row["cached_b1"] / 16000, 3)
    row["real_time_ratio_b1_cpu"] = round(CPU_RATES["cached_b1"] / 16000, 3)
    row["cached_over_incremental_b1_cpu"] = round(CPU_RATES["cached_b1"] / CPU_RATES["incremental_b1"], 2)
    return row


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="samples generated by the cached path at batch 1")
    parser.add_argument("--naive-steps", type=int, default=40, help="samples generated by the naive path")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    rows = [generation(name, args.steps, args.naive_steps) for name in DECODERS]
    print(json.dumps({"settings": vars(args), "torch": torch.__version__, "platform": platform.platform(),
                      "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count(),
                      "generation": rows, "training": [training("quick"), training("long")]}))


if __name__ == "__main__":
    main()
