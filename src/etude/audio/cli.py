"""`etude audio ...` verbs: render MIDI to WAV, train a hierarchy on rendered Bach, generate audio."""

from __future__ import annotations

import argparse
from pathlib import Path

from etude.errors import BadInputError
from etude.runtime.files import check_output_file, ensure_dir

MAX_SECONDS = 3600.0
"""Longest audio `etude audio generate` writes (an hour at 16 kHz is 115 MB of PCM)."""


def _render(args: argparse.Namespace) -> int:
    from etude.audio.render import SAMPLE_RATE, render_midi, write_wav

    check_output_file(args.output)
    source = Path(args.midi)
    if not source.is_file():
        raise BadInputError(f"MIDI file {source} does not exist")
    audio = render_midi(source)
    print(f"{write_wav(args.output, audio, SAMPLE_RATE)}: {len(audio) / SAMPLE_RATE:.2f} s at {SAMPLE_RATE} Hz")
    return 0


def _train(args: argparse.Namespace) -> int:
    import torch

    from etude.audio.hierarchy import Hierarchy, HierarchyConfig, LevelConfig, save_hierarchy
    from etude.audio.render import piano_dataset
    from etude.audio.training import fit_hierarchy, to_classes
    from etude.runtime import seed_everything

    if not args.hops or any(h < 1 for h in args.hops):
        raise BadInputError(f"--hops expects positive ints, got {args.hops}")
    ensure_dir(args.out)
    seed_everything(args.seed)
    levels, classes = [], 256
    for hop in args.hops:
        levels.append(LevelConfig(classes=classes, hop=hop, codes=args.codes, bottleneck=args.bottleneck,
                                  residual=args.residual, skip=2 * args.residual, layers=args.layers,
                                  encoder_channels=args.residual * 2))
        classes = args.codes
    model = Hierarchy(HierarchyConfig(tuple(levels), prior_residual=args.residual, prior_layers=args.layers))
    data = piano_dataset(args.pieces, seed=args.seed, max_seconds=args.max_seconds)
    out = Path(args.out)
    fit_hierarchy(model, to_classes(data["train"]), steps=args.steps, prior_steps=args.steps, batch=args.batch,
                  length=args.length, prior_length=args.prior_length, lr=args.lr, seed=args.seed,
                  checkpoint_dir=out / "checkpoints", resume=args.resume)
    save_hierarchy(out / "hierarchy.pt", model)
    print(f"{out / 'hierarchy.pt'}: {len(args.hops)} level(s), total hop {model.total_hop}; torch {torch.__version__}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    import torch

    from etude.audio.hierarchy import load_hierarchy
    from etude.audio.render import SAMPLE_RATE, write_wav

    if not 0 < args.seconds <= MAX_SECONDS:
        raise BadInputError(f"--seconds must be a number in (0, {MAX_SECONDS:g}], got {args.seconds}")
    check_output_file(args.output)
    path = Path(args.checkpoint)
    model = load_hierarchy(path / "hierarchy.pt" if path.is_dir() else path)
    generator = torch.Generator().manual_seed(args.seed)
    audio = model.sample(max(1, int(args.seconds * SAMPLE_RATE)), generator=generator, temperature=args.temperature)
    print(f"{write_wav(args.output, audio.numpy())}: {len(audio) / SAMPLE_RATE:.2f} s")
    return 0


def add_commands(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `etude audio render|train|generate` to the top-level subcommands."""
    audio = sub.add_parser("audio", help="raw-audio music: render, train a hierarchy, generate (AMAE)")
    verbs = audio.add_subparsers(dest="verb", required=True, parser_class=parser_class)
    render = verbs.add_parser("render", help="render a MIDI file to 16 kHz mono WAV with fluidsynth")
    render.add_argument("midi")
    render.add_argument("-o", "--output", required=True)
    render.set_defaults(func=_render)

    train = verbs.add_parser("train", help="train an AMAE/VQ hierarchy and its prior on rendered Bach")
    train.add_argument("--out", required=True, help="folder for hierarchy.pt and checkpoints")
    train.add_argument("--pieces", type=int, default=8)
    train.add_argument("--max-seconds", type=float, default=None)
    train.add_argument("--hops", type=int, nargs="+", default=[16])
    train.add_argument("--codes", type=int, default=256)
    train.add_argument("--bottleneck", choices=["amae", "vq"], default="amae")
    train.add_argument("--residual", type=int, default=16)
    train.add_argument("--layers", type=int, default=8)
    train.add_argument("--steps", type=int, default=200)
    train.add_argument("--batch", type=int, default=4)
    train.add_argument("--length", type=int, default=1024)
    train.add_argument("--prior-length", type=int, default=256)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", action="store_true")
    train.set_defaults(func=_train)

    gen = verbs.add_parser("generate", help="sample audio from a trained hierarchy")
    gen.add_argument("--checkpoint", required=True, help="hierarchy.pt or the folder holding it")
    gen.add_argument("--seconds", type=float, default=4.0)
    gen.add_argument("-o", "--output", required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.set_defaults(func=_generate)
