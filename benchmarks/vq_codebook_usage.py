"""Codebook use of etude's VectorQuantizer against vector-quantize-pytorch on the same encoder features.

Run: .venv/bin/python benchmarks/vq_codebook_usage.py [--steps 300] [--batch 8] [--threads 1]
(needs the `bench` extra: pip install 'etude[bench]', i.e. vector-quantize-pytorch)

Features: a seeded, untrained `etude.audio.Encoder` (hop 8, 64 channels, D = 32) applied to mu-law
rendered Bach (`piano_dataset(12)`), so both quantizers see exactly the same vectors; every step a
batch of `batch` crops x 1024 samples = 1,024 vectors. Both use K = 256, k-means init (10 iterations)
on the first batch, EMA decay 0.99 and a dead-code threshold of 2 uses per batch:
- etude: VectorQuantizer(256, 32, ema=0.99, kmeans_init=True, restart_threshold=2)
- peer: vector_quantize_pytorch.VectorQuantize(dim=32, codebook_size=256, decay=0.99, kmeans_init=True,
  kmeans_iters=10, threshold_ema_dead_code=2)
Reports codes in use and code entropy (bits) on held-out features after the step budget, and the
same for etude without restarts and with plain gradient VQ (no remedies), as the floor.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch


def features(steps: int, batch: int, seed: int = 0):
    from etude.audio import piano_dataset
    from etude.audio.hierarchy import Encoder
    from etude.audio.training import fixed_crops, random_crops, to_classes

    data = piano_dataset(12, seed=0, show_progress=False)
    train, valid = to_classes(data["train"]), to_classes(data["valid"])
    torch.manual_seed(seed)
    encoder = Encoder(256, 64, 32, 8).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        batches = [encoder(random_crops(train, batch, 1024, g)).transpose(1, 2).reshape(-1, 32) for _ in range(steps)]
        held = encoder(fixed_crops(valid, 1024, 32)).transpose(1, 2).reshape(-1, 32)
    return batches, held


def run_etude(batches, held, **kwargs) -> dict:
    from etude.audio import VectorQuantizer, code_entropy, codebook_usage

    torch.manual_seed(1)
    vq = VectorQuantizer(256, 32, **kwargs).train()
    optimizer = torch.optim.Adam([vq.codebook], 1e-3) if vq.ema is None else None
    for flat in batches:
        out = vq(flat.t().unsqueeze(0))
        if optimizer is not None:
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
    vq.eval()
    with torch.no_grad():
        idx = vq(held.t().unsqueeze(0)).indices
    return {"usage": codebook_usage(idx, 256), "entropy_bits": round(code_entropy(idx, 256), 3)}


def run_peer(batches, held) -> dict:
    from vector_quantize_pytorch import VectorQuantize

    from etude.audio import code_entropy, codebook_usage

    torch.manual_seed(1)
    vq = VectorQuantize(dim=32, codebook_size=256, decay=0.99, kmeans_init=True, kmeans_iters=10,
                        threshold_ema_dead_code=2).train()
    for flat in batches:
        vq(flat.unsqueeze(0))
    vq.eval()
    with torch.no_grad():
        _, idx, _ = vq(held.unsqueeze(0))
    return {"usage": codebook_usage(idx, 256), "entropy_bits": round(code_entropy(idx, 256), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import vector_quantize_pytorch

    batches, held = features(args.steps, args.batch)
    rows = {"etude_ema_kmeans_restart": run_etude(batches, held, ema=0.99, kmeans_init=True, restart_threshold=2.0),
            "vector_quantize_pytorch": run_peer(batches, held),
            "etude_ema_kmeans": run_etude(batches, held, ema=0.99, kmeans_init=True),
            "etude_plain": run_etude(batches, held)}
    print(json.dumps({"settings": vars(args), "held_out_vectors": len(held), "torch": torch.__version__,
                      "vector_quantize_pytorch": getattr(vector_quantize_pytorch, "__version__", "?"),
                      "platform": platform.platform(), "results": rows}))


if __name__ == "__main__":
    main()
