"""`etude audio ...` verbs: render MIDI to WAV, train a hierarchy on rendered Bach, generate audio,
reconstruct a WAV through the hierarchy's codes."""

from __future__ import annotations

import argparse
from pathlib import Path

from etude.errors import BadInputError
from etude.runtime.files import check_output_file, ensure_dir

MAX_SECONDS = 3600.0
"""Longest audio `etude audio generate` writes (an hour at 16 kHz is 115 MB of PCM)."""
MAX_RECONSTRUCT_SECONDS = 600.0
"""Longest input `etude audio reconstruct` reads (10 minutes at 16 kHz: about 40 MB of float32 samples and
77 MB of classes; longer inputs are refused before any sample is read: pass --seconds)."""


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
    if args.ema and not 0 < args.ema < 1:
        raise BadInputError(f"--ema must be a decay in (0, 1), got {args.ema}")
    if args.restart_threshold < 0:
        raise BadInputError(f"--restart-threshold must be >= 0 (uses per batch), got {args.restart_threshold}")
    ensure_dir(args.out)
    seed_everything(args.seed)
    levels, classes = [], 256
    for hop in args.hops:
        levels.append(
            LevelConfig(
                classes=classes,
                hop=hop,
                codes=args.codes,
                bottleneck=args.bottleneck,
                residual=args.residual,
                skip=2 * args.residual,
                layers=args.layers,
                encoder_channels=args.residual * 2,
                ema=args.ema,
                kmeans_init=args.kmeans_init,
                restart_threshold=args.restart_threshold,
                scalar_input=classes == 256,
            )
        )
        classes = args.codes
    model = Hierarchy(HierarchyConfig(tuple(levels), prior_residual=args.residual, prior_layers=args.layers))
    data = piano_dataset(args.pieces, seed=args.seed, max_seconds=args.max_seconds)
    out = Path(args.out)
    fit_hierarchy(
        model,
        to_classes(data["train"]),
        steps=args.steps,
        prior_steps=args.steps,
        batch=args.batch,
        length=args.length,
        prior_length=args.prior_length,
        lr=args.lr,
        seed=args.seed,
        checkpoint_dir=out / "checkpoints",
        resume=args.resume,
        final_lr=args.final_lr,
    )
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


def _reconstruct(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from etude.audio.hierarchy import load_hierarchy
    from etude.audio.metrics import audio_metrics
    from etude.audio.mulaw import mulaw_decode, mulaw_encode
    from etude.audio.render import SAMPLE_RATE, read_wav, write_wav

    if args.seconds is not None and not 0 < args.seconds <= MAX_RECONSTRUCT_SECONDS:
        raise BadInputError(f"--seconds must be a number in (0, {MAX_RECONSTRUCT_SECONDS:g}], got {args.seconds}")
    path = Path(args.checkpoint)
    model = load_hierarchy(path / "hierarchy.pt" if path.is_dir() else path)
    audio, rate = read_wav(args.input, max_seconds=args.seconds, limit_seconds=MAX_RECONSTRUCT_SECONDS)
    if rate != SAMPLE_RATE:
        raise BadInputError(
            f"{args.input} is sampled at {rate} Hz; the model was trained at {SAMPLE_RATE} Hz: "
            f"resample it first (e.g. `sox in.wav -r {SAMPLE_RATE} out.wav`)"
        )
    if not 0 <= args.level < len(model.levels):
        raise BadInputError(f"--level must be in [0, {len(model.levels)}) for this {len(model.levels)}-level model")
    audio = audio[: len(audio) // model.total_hop * model.total_hop]
    if not len(audio):
        raise BadInputError(f"{args.input} is shorter than one top-level code ({model.total_hop} samples)")
    x = mulaw_encode(torch.from_numpy(np.clip(audio, -1, 1)), model.config.levels[0].classes).unsqueeze(0)
    classes = model.reconstruct(
        x, args.level, generator=torch.Generator().manual_seed(args.seed), temperature=args.temperature
    )
    out = mulaw_decode(classes[0], model.config.levels[0].classes).numpy()
    m = audio_metrics(audio, out)
    print(
        f"{write_wav(args.output, out)}: {len(out) / SAMPLE_RATE:.2f} s from level-{args.level} codes; "
        f"log-mel distance {m['mel_db']:.1f} dB, flatness {m['flatness']:.3g}, chroma agreement {m['chroma']:.2f}"
    )
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
    train.add_argument("--hops", type=int, nargs="+", default=[8, 8], help="hop of every level, bottom up")
    train.add_argument("--codes", type=int, default=256)
    train.add_argument("--bottleneck", choices=["amae", "vq"], default="amae")
    train.add_argument("--residual", type=int, default=32)
    train.add_argument("--layers", type=int, default=10, help="decoder layers (receptive field 2^layers)")
    train.add_argument("--steps", type=int, default=800)
    train.add_argument("--batch", type=int, default=8)
    train.add_argument("--length", type=int, default=1024)
    train.add_argument("--prior-length", type=int, default=64)
    train.add_argument("--lr", type=float, default=3e-3)
    train.add_argument("--final-lr", type=float, default=0.1, help="learning-rate fraction at the end (linear decay)")
    train.add_argument("--ema", type=float, default=0.0, help="VQ codebook EMA decay, e.g. 0.99 (0: gradient)")
    train.add_argument("--kmeans-init", action="store_true", help="VQ: k-means codebook init on the first batch")
    train.add_argument(
        "--restart-threshold",
        type=float,
        default=0.0,
        help="VQ: restart codes used fewer times than this per batch (EMA count; 0: never)",
    )
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

    rec = verbs.add_parser("reconstruct", help="encode a 16 kHz WAV with a trained hierarchy and decode it back")
    rec.add_argument("--checkpoint", required=True, help="hierarchy.pt or the folder holding it")
    rec.add_argument("input", help="16-bit PCM WAV at the model's sample rate")
    rec.add_argument("-o", "--output", required=True)
    rec.add_argument("--level", type=int, default=0, help="decode from the codes of this level (0: the bottom)")
    rec.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"read only the first seconds of the input (longer than {MAX_RECONSTRUCT_SECONDS:g} s is refused)",
    )
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--temperature", type=float, default=1.0)
    rec.set_defaults(func=_reconstruct)
