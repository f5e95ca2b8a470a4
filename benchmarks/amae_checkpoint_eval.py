"""Held-out figures of the amae study's level-0 autoencoder from a checkpoint, finished or not.

Run: .venv/bin/python benchmarks/amae_checkpoint_eval.py RUN_DIR/amae/checkpoints/level0.pt --preset long
     [--seconds 1.0] [--temperature 1.0]

For a run cut short (the shared machine) this reads the latest level-0 checkpoint of the stack, and
measures what the study would: held-out decoder NLL (bits/sample), codes in use and entropy, and the
reconstruction of the first held-out second from its codes judged by `judge_reconstruction`
(log-mel distance, flatness, chroma, against white noise and the 8-bit mu-law round trip).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--preset", default="long")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from etude.audio import AutoEncoder, LevelConfig, judge_reconstruction, mulaw_decode, mulaw_encode, piano_dataset
    from etude.audio.study import AmaeStudy
    from etude.audio.training import evaluate_level, fixed_crops, to_classes
    from etude.runtime import load_checkpoint

    p = AmaeStudy.presets[args.preset]
    config = LevelConfig(hop=p.hops[0], codes=p.codes, residual=p.residual, skip=2 * p.residual, layers=p.layers,
                         stacks=p.stacks, encoder_channels=p.encoder_channels, diversity=p.diversity,
                         scalar_input=p.scalar_input)
    state = load_checkpoint(args.checkpoint)
    level = AutoEncoder(config)
    level.load_state_dict(state["model"])
    level.eval()
    data = piano_dataset(p.pieces, seed=args.seed, max_seconds=p.max_seconds or None, show_progress=False)
    valid = to_classes(data["valid"])
    level.decoder.fit_first(to_classes(data["train"]))
    figures = evaluate_level(level, fixed_crops(valid, p.length, p.valid_crops))
    reference = np.concatenate(data["valid"])[: int(args.seconds * 16000) // p.hops[0] * p.hops[0]]
    x = mulaw_encode(torch.from_numpy(reference), 256).unsqueeze(0)
    with torch.no_grad():
        codes = level.encode(x).indices
        out = level.decode(codes, x.shape[1], generator=torch.Generator().manual_seed(args.seed),
                           temperature=args.temperature)
    passes, judged = judge_reconstruction(reference, mulaw_decode(out[0], 256).numpy(), args.seed)
    print(json.dumps({"checkpoint": args.checkpoint, "step": int(state["step"]), "preset": args.preset,
                      "temperature": args.temperature, **figures, "reconstruction_passes": passes, **judged}))


if __name__ == "__main__":
    main()
