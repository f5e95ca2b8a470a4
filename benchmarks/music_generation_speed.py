"""Music Transformer generation: KV-cached vs recomputing the whole prefix each step; skew memory; training speed.

Prints one JSON line with settings, versions and figures:
- tokens per second of cached and uncached generation (batch 1) at each length, their ratio, and
  the largest difference between cached and full-forward logits over the generated sequence;
- element counts (float32 MiB) of the relative-logit intermediates per head and layer: the skew's
  ``Q E^T`` (L x L) plus its table (L x Dh) against a naive gather of E per query-key pair (L x L x Dh);
- tokens per second of cached generation at batch 1 and batch 8 for 1,024 tokens (all rows
  together: ``batch * (length - 1) / wall``; per row: ``(length - 1) / wall``);
- training tokens per second of the quick preset's melody+performance model;
- the commit and the load average (before, after) of the machine;
- ``step_comparison``: tokens per CPU second (time.process_time, one thread) at batch 1 and 8 of the
  fused step (``generate``'s default, `etude.music.decode_step.DecodeStep`), the module-level cached
  step it replaced (``fused=False``, the code before it) and a public-port-style loop that recomputes
  the whole prefix each token with no key/value cache (``use_cache=False``), on a 256-wide 4-layer
  model (8 heads); the three produce the same tokens (checked), and the fused step's logits are
  compared with the full forward pass.

    python benchmarks/music_generation_speed.py [--lengths 512 1024] [--batches 1 8 --batch-length 1024]
        [--no-recompute] [--dim 64 --layers 2 --heads 4] [--threads 1]
        [--compare-length 256 --compare-batches 1 8] [--out benchmarks/results/music_generation_speed_DATE.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import torch
from provenance import commit

from etude.music.autoencoder import TransformerAutoencoder
from etude.music.generate import generate
from etude.music.training import Crops, fit
from etude.music.transformer import MusicTransformer, TransformerConfig
from etude.studies.protocol import versions



def compare_steps(length: int, batches: list[int], dim: int, layers: int, heads: int, seed: int) -> dict:
    """Tokens per CPU second of the fused step, the module step and the no-cache recompute loop, same process."""
    torch.manual_seed(seed)
    cfg = TransformerConfig(dim=dim, heads=heads, layers=layers, ff=4 * dim, max_len=length, dropout=0.0)
    model = MusicTransformer(cfg).eval()
    generate(model, 1, max_length=8, eos=None, show_progress=False)  # first-call costs out of the timings
    out: dict = {"model": {"dim": dim, "layers": layers, "heads": heads, "ff": 4 * dim}, "length": length}
    for batch in batches:
        row: dict = {}
        samples = {}
        for name, options in (("fused", {}), ("module_step", {"fused": False}), ("recompute", {"use_cache": False})):
            cpu = time.process_time()
            samples[name] = generate(model, batch, max_length=length, seed=seed, eos=None, show_progress=False,
                                     **options)
            cpu = time.process_time() - cpu
            row[name] = {"tokens_per_cpu_s": round(batch * (length - 1) / cpu, 1), "cpu_s": round(cpu, 3)}
        row["same_tokens"] = all(torch.equal(samples["fused"], t) for t in samples.values())
        row["fused_over_module_step"] = round(row["fused"]["tokens_per_cpu_s"] / row["module_step"]["tokens_per_cpu_s"], 2)
        row["fused_over_recompute"] = round(row["fused"]["tokens_per_cpu_s"] / row["recompute"]["tokens_per_cpu_s"], 2)
        out[f"B{batch}"] = row
        print(f"batch {batch}: fused {row['fused']['tokens_per_cpu_s']} tok/CPU-s, module step "
              f"{row['module_step']['tokens_per_cpu_s']}, recompute {row['recompute']['tokens_per_cpu_s']}; "
              f"same tokens {row['same_tokens']}", file=sys.stderr, flush=True)
    from etude.music.decode_step import DecodeStep

    tokens = samples["fused"][:1]
    with torch.no_grad():
        full = model(tokens[:, :-1])
        step = DecodeStep(model, 1, length)
        steps = [step.prefill(tokens[:, :1])] + [step(tokens[:, t]) for t in range(1, length - 1)]
    out["fused_max_logit_difference_vs_full_forward"] = float((torch.stack(steps, 1) - full).abs().max())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--batch-length", type=int, default=1024)
    parser.add_argument("--recompute", action=argparse.BooleanOptionalAction, default=True,
                        help="also time recomputing the prefix (slow: about a minute at 1,024 tokens)")
    parser.add_argument("--compare-length", type=int, default=256)
    parser.add_argument("--compare-batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--compare-dim", type=int, default=256)
    parser.add_argument("--compare-layers", type=int, default=4)
    parser.add_argument("--compare-heads", type=int, default=8)
    parser.add_argument("--out", default=None, help="also write the JSON record here (with the date)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    torch.set_num_threads(args.threads)
    comparison = compare_steps(args.compare_length, args.compare_batches, args.compare_dim, args.compare_layers,
                               args.compare_heads, args.seed)
    torch.manual_seed(args.seed)
    cfg = TransformerConfig(dim=args.dim, heads=args.heads, layers=args.layers, ff=4 * args.dim,
                            max_len=max(*args.lengths, args.batch_length), dropout=0.0)
    model = MusicTransformer(cfg).eval()
    figures: dict = {}
    for length in args.lengths:
        row = {}
        for cached in (True, False) if args.recompute else (True,):
            start, cpu = time.perf_counter(), time.process_time()
            tokens = generate(model, 1, max_length=length, seed=args.seed, eos=None, use_cache=cached,
                              show_progress=False)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            row["cached" if cached else "recompute"] = {"tokens_per_s": round((length - 1) / wall, 1),
                                                       "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
            if cached:
                sample = tokens
            else:
                assert torch.equal(tokens, sample), "cached and recomputed generation differ"
                row["speedup"] = round(row["cached"]["tokens_per_s"] / row["recompute"]["tokens_per_s"], 1)
        with torch.no_grad():
            full = model(sample[:, :-1])
            cache: dict = {}
            steps = [model(sample[:, t:t + 1], cache=cache) for t in range(length - 1)]
        row["max_logit_difference"] = float((torch.cat(steps, 1) - full).abs().max())
        figures[f"L{length}"] = row
    batched = {}
    for batch in args.batches:
        start = time.perf_counter()
        tokens = generate(model, batch, max_length=args.batch_length, seed=args.seed, eos=None, show_progress=False)
        wall = time.perf_counter() - start
        assert tokens.shape == (batch, args.batch_length)
        new = args.batch_length - 1
        batched[f"B{batch}"] = {"tokens_per_s": round(batch * new / wall, 1), "tokens_per_s_per_row": round(new / wall, 1),
                                "wall_s": round(wall, 2)}
    head_dim = 512 // 8  # the paper's D = 512, 8 heads
    memory = {}
    for length in (1024, 2048):
        skew = (length * length + length * head_dim) * 4 / 2**20
        naive = length * length * head_dim * 4 / 2**20
        memory[f"L{length}"] = {"skew_MiB": round(skew, 1), "naive_MiB": round(naive, 1), "ratio": round(naive / skew, 1)}
    torch.manual_seed(args.seed)
    tae = TransformerAutoencoder(TransformerConfig(dim=64, heads=4, layers=2, ff=128, max_len=64, dropout=0.0),
                                 "melody+performance", "sum", encoder_layers=1)
    data = Crops(torch.randint(2, 390, (64, 63)), torch.randint(4, 92, (64, 64)))
    fit(tae, data, steps=3, batch_size=16, lr=1e-3, seed=0, show_progress=False)  # warm-up
    start = time.perf_counter()
    fit(tae, data, steps=20, batch_size=16, lr=1e-3, seed=0, show_progress=False)
    train_tps = 20 * 16 * 63 / (time.perf_counter() - start)
    record = {"benchmark": "music_generation_speed", "date": datetime.date.today().isoformat(),
              "settings": vars(args), "versions": versions(), "commit": commit(), "step_comparison": comparison,
                      "load_average_1_5_15": {"before": [round(v, 2) for v in load_before],
                                              "after": [round(v, 2) for v in os.getloadavg()]},
                      "generation": figures, f"batched_generation_L{args.batch_length}": batched,
                      "relative_logit_memory_per_head_layer": memory,
                      "training_tokens_per_s_quick_model": round(train_tps, 1)}
    print(json.dumps(record))
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
