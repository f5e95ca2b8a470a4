"""`etude music ...` verbs: encode, decode, corpus, similarity, plot, train, generate.

etude music encode piece.mid [--keys 88] [-o ids.txt]   # token ids, space-separated
etude music decode ids.txt -o piece.mid                 # any ids -> a playable MIDI file
etude music corpus --stats [--collection bach --limit 20 --seed 0]
etude music similarity a.mid b.mid [--features]         # OA similarity in [0, 1]
etude music plot piece.mid -o roll.png [--melody]       # piano roll (melody outlined)
etude music train --out ckpt/ [--conditioning performance --combine sum --steps 200 --pieces 40]
etude music train --out ckpt/ --midi-dir maestro/ [--held-out 0.1 --max-tokens 256 --per-piece 64]
etude music generate --checkpoint ckpt/model.pt [--style A.mid] [--melody B.mid]
                     [--interpolate A.mid B.mid --alpha 0.5] -o out.mid
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from etude.errors import BadInputError
from etude.runtime.files import check_output_file, ensure_dir, write_atomic


def _encoding(args: argparse.Namespace):
    from etude.music.events import PerformanceEncoding

    return PerformanceEncoding(keys=args.keys)


def _encode(args: argparse.Namespace) -> int:
    from etude.music.performance import Performance

    if args.output is not None:
        check_output_file(args.output)
    ids = _encoding(args).encode(Performance.from_midi(args.file), bos=args.bos, eos=args.eos)
    if args.output is None:
        try:
            print(" ".join(map(str, ids.tolist())), flush=True)
        except BrokenPipeError:  # e.g. `etude music encode x.mid | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    elif args.output.endswith(".npy"):
        buffer = io.BytesIO()
        np.save(buffer, ids)
        write_atomic(args.output, buffer.getvalue(), what="-o")
    else:
        write_atomic(args.output, " ".join(map(str, ids.tolist())) + "\n", what="-o")
    if args.output is not None:
        print(f"wrote {ids.size} ids to {args.output}")
    return 0


def _decode(args: argparse.Namespace) -> int:
    from etude.music.tokens import read_ids  # the music extra: imported when the verb runs

    check_output_file(args.output)
    performance = _encoding(args).decode(read_ids(args.ids))
    performance.to_midi(args.output)
    print(f"wrote {len(performance)} notes ({performance.duration:.2f} s) to {args.output}")
    return 0


def _corpus(args: argparse.Namespace) -> int:
    from etude.music.corpus import load_corpus

    if args.export:
        ensure_dir(args.export, what="--export")
    corpus = load_corpus(args.collection, limit=args.limit, seed=args.seed, cache=args.cache)
    if args.export:
        out = Path(args.export)
        for piece in corpus.pieces:
            piece.performance.to_midi(out / piece.split / f"{piece.name}.mid")
            (out / piece.split / f"{piece.name}.style.json").write_text(json.dumps(piece.style.as_dict()) + "\n")
        print(f"wrote {len(corpus)} performances and styles under {out}")
    if args.stats or not args.export:
        stats = corpus.stats(_encoding(args))
        if args.json:
            print(json.dumps(stats))
        else:
            for key, value in stats.items():
                print(f"{key}: {value}")
    return 0


def _similarity(args: argparse.Namespace) -> int:
    from etude.music.metrics import oa_similarity
    from etude.music.performance import Performance

    a, b = Performance.from_midi(args.a), Performance.from_midi(args.b)
    result = oa_similarity(a, b, window=args.window, hop=args.hop, per_feature=True)
    print(f"oa: {result['oa']:.4f}")
    if args.features:
        for key, value in result.items():
            if key != "oa":
                print(f"  {key}: {value:.4f}")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from etude.music.melody import skyline
    from etude.music.performance import Performance
    from etude.music.plots import plot_piano_roll

    check_output_file(args.output)
    performance = Performance.from_midi(args.file)
    melody = skyline(performance) if args.melody else None
    output = check_output_file(args.output, what="-o")
    try:
        plot_piano_roll(performance, output, title=Path(args.file).name, melody=melody)
    except OSError as error:
        raise BadInputError(f"cannot write {output} ({type(error).__name__}: {error.strerror or error})") from error
    print(f"wrote {args.output}")
    return 0


TRAIN_SETTINGS = (
    "conditioning", "combine", "unpooled", "absolute", "midi_dir", "held_out", "pieces", "seconds", "max_tokens",
    "per_piece", "dim", "heads", "layers", "dropout", "steps", "batch_size", "lr", "seed",
)  # fmt: skip
"""The options of `etude music train` that shape its result, recorded in OUT/settings.json and checked on --resume."""


def _settings(args: argparse.Namespace) -> dict:
    settings = {name: getattr(args, name) for name in TRAIN_SETTINGS}
    if settings["midi_dir"] is not None:
        settings["midi_dir"] = str(Path(settings["midi_dir"]).resolve())
    return settings


def _check_resume(out: Path, settings: dict) -> None:
    """Refuse, in one line naming the option, a --resume whose settings differ from the run in ``out``."""
    from etude.errors import CheckpointError

    if not (out / "training.pt").is_file():
        return  # nothing to resume: fit starts afresh
    recorded = out / "settings.json"
    try:
        before = json.loads(recorded.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f"--resume: {recorded} is missing or unreadable ({type(error).__name__}), so the settings of the run "
            f"in {out} are unknown; train into another --out"
        ) from error
    for name, value in settings.items():
        if name not in before or before[name] != value:
            option = "--" + name.replace("_", "-")
            was = before.get(name, "not recorded")
            raise CheckpointError(
                f"--resume: {option} is {value!r} here but {was!r} in the run in {out}; "
                f"resume with {option} {was} or train into another --out"
            )


def _topmost_new(folder: Path) -> Path | None:
    """The highest folder of ``folder`` and its parents that does not exist yet (None when it exists)."""
    new = None
    for path in (folder, *folder.parents):
        if path.exists():
            return new
        new = path
    return new


def _train(args: argparse.Namespace) -> int:
    """Train into --out; a run that fails before any checkpoint removes the folders it created."""
    import shutil

    out = Path(args.out)
    created = _topmost_new(out.resolve()) if str(args.out).strip() else None
    settings = _settings(args)
    if args.resume:
        _check_resume(out, settings)
    wrote_settings = not (out / "settings.json").exists()
    try:
        return _train_into(args, out, settings)
    except BaseException:
        if (out / "training.pt").exists():  # resumable: keep it
            print(f"etude: kept {out / 'training.pt'}; continue with the same command and --resume", file=sys.stderr)
        elif created is not None:
            shutil.rmtree(created, ignore_errors=True)
        elif wrote_settings:
            (out / "settings.json").unlink(missing_ok=True)
        raise


def _train_into(args: argparse.Namespace, out: Path, settings: dict) -> int:
    from etude.music.autoencoder import TransformerAutoencoder
    from etude.music.events import PerformanceEncoding
    from etude.music.training import fit, nll, save_model
    from etude.music.transformer import TransformerConfig
    from etude.runtime import seed_everything

    ensure_dir(args.out)
    seed_everything(args.seed)
    train, held, extra = _midi_dir_crops(args) if args.midi_dir is not None else _corpus_crops(args)
    cfg = TransformerConfig(
        vocab_size=PerformanceEncoding().vocab_size,
        dim=args.dim,
        heads=args.heads,
        layers=args.layers,
        ff=4 * args.dim,
        max_len=args.max_tokens,
        dropout=args.dropout,
        relative=not args.absolute,
        absolute=True,
    )
    model = TransformerAutoencoder(cfg, args.conditioning, args.combine, pool=not args.unpooled)
    write_atomic(out / "settings.json", json.dumps(settings, indent=1) + "\n", what="--out")
    fit(
        model,
        train,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        checkpoint=out / "training.pt",
        resume=args.resume,
    )
    if held is not None:  # the texture generations are compared with (etude music generate prints both)
        from etude.music.likeness import figures_of_ids

        rows = held.performance if hasattr(held, "performance") else held.select(list(range(len(held)))).performance
        extra["data_figures"] = figures_of_ids(rows)
    save_model(out / "model.pt", model, **extra)
    message = f"wrote {out / 'model.pt'}"
    if held is not None:
        message += f"; held-out NLL {nll(model, held):.3f} nats/token ({len(held)} crops)"
    print(message)
    return 0


def _corpus_crops(args: argparse.Namespace):
    """(train crops, held-out crops or None, save_model extras) from the first --pieces Bach chorales."""
    from etude.music.corpus import load_corpus
    from etude.music.training import make_crops

    corpus = load_corpus("bach", limit=args.pieces or None, seed=args.seed, cache=args.cache)
    train, held = corpus.split("train"), corpus.split("validation") + corpus.split("test")
    if not train:
        raise BadInputError(f"--pieces {args.pieces} gives no training piece; use more pieces")
    crops = {"seconds": args.seconds, "max_tokens": args.max_tokens}
    held_crops = make_crops(held, per_piece=4, seed=args.seed + 1, **crops) if held else None
    return (
        make_crops(train, per_piece=args.per_piece, seed=args.seed, augment=True, **crops),
        held_crops,
        {"seconds": args.seconds},
    )


def _midi_dir_crops(args: argparse.Namespace):
    """(train crops, held-out crops or None, save_model extras) of --midi-dir by ``etude.music.midi_dir_crops``."""
    import warnings

    from etude.music.folder import midi_dir_crops

    options = {"max_tokens": args.max_tokens, "per_piece": args.per_piece, "held_out": args.held_out}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            data = midi_dir_crops(args.midi_dir, seed=args.seed, cache=args.cache, **options)
        except BadInputError as error:  # name the command-line option, not the keyword
            message = str(error)
            for name in options:
                message = message.replace(f"{name} must", f"--{name.replace('_', '-')} must")
            raise BadInputError(message.replace("lower held_out", "lower --held-out")) from error
    for warning in caught:  # one line each: the skipped files, a rebuilt cache
        print(f"etude: warning: {warning.message}", file=sys.stderr)
    tokens, stats = data.tokens, data.tokens.stats()
    print(
        f"{'tokenized' if tokens.built else 'read from the cache'}: {len(tokens)} files, {stats['hours']} h, "
        f"{stats['tokens']:,} tokens ({tokens.entry}); split by file: {data.train_files} train, "
        f"{data.held_files} held-out"
    )
    return data.train, data.held, {"midi_files": len(tokens)}


def _check_generate_options(args: argparse.Namespace, model) -> None:
    """One-line errors for options the model cannot use (exit 2), before any work."""
    kind = f"this model (--conditioning {model.conditioning})"
    if args.style and args.interpolate:
        raise BadInputError("--style and --interpolate both set the style; give one of them")
    if args.alpha is not None and not args.interpolate:
        raise BadInputError("--alpha weighs the two styles of --interpolate A.mid B.mid; give --interpolate too")
    if (args.style or args.interpolate) and not model.uses_performance:
        option = "--style" if args.style else "--interpolate"
        raise BadInputError(f"{option}: {kind} has no performance encoder; train with --conditioning performance "
                            "or melody+performance")  # fmt: skip
    if args.melody and not model.uses_melody:
        raise BadInputError(f"--melody: {kind} has no melody encoder; train with --conditioning melody "
                            "or melody+performance")  # fmt: skip
    if model.uses_performance and not (args.style or args.interpolate):
        raise BadInputError(f"{kind} needs --style A.mid (or --interpolate A.mid B.mid)")
    if model.uses_melody and not args.melody:
        raise BadInputError(f"{kind} needs --melody B.mid")
    if args.interpolate and not model.pool:
        raise BadInputError("--interpolate: the unpooled model has no style vector to mix; use --style")


def _load_generator(checkpoint: str):
    """The model of --checkpoint, or a one-line error that says what --checkpoint must be."""
    from etude.errors import CheckpointError
    from etude.music.training import load_model

    if not Path(checkpoint).is_file():
        raise BadInputError(f"--checkpoint {checkpoint} is not a file; pass the model.pt of `etude music train`")
    try:
        return load_model(checkpoint)
    except CheckpointError as error:  # the loader's advice is for resuming training; generate only reads
        reason = re.sub(r";? *(delete it or run without --resume|run without --resume)", "", str(error))
        raise CheckpointError(
            f"{reason}; --checkpoint must be a model.pt written by `etude music train` (retrain it if damaged)"
        ) from error


def _midi_ids(path: str, encoding):
    """The token ids of the MIDI file ``path`` as a (1, T) tensor; a file without notes is refused."""
    import torch

    from etude.music.performance import Performance

    tokens = encoding.encode(Performance.from_midi(path))
    if tokens.size == 0:
        raise BadInputError(f"{path} has no notes")
    return torch.from_numpy(tokens)[None]


def _cut(path: str, tokens, keep: int, what: str, encoding):
    """The first ``keep`` tokens, saying (when it cuts) how much of ``path`` the model reads."""
    if tokens.shape[1] > keep:  # say exactly what the model reads
        used = encoding.decode(tokens[0, :keep]).duration
        whole = encoding.decode(tokens[0]).duration
        print(f"{what} {path}: the model reads its first {keep} of {tokens.shape[1]} tokens "
              f"({used:.1f} of {whole:.1f} s)")  # fmt: skip
    return tokens[:, :keep]


def _interpolated_style(args: argparse.Namespace, model, encoding):
    """The style vector (1 - alpha) s(A) + alpha s(B) of --interpolate A.mid B.mid."""
    import torch

    alpha = 0.5 if args.alpha is None else args.alpha
    if not 0 <= alpha <= 1:
        raise BadInputError(f"--alpha must be in [0, 1], got {alpha!r}")
    a, b = (_midi_ids(p, encoding) for p in args.interpolate)
    with torch.no_grad():
        style = (1 - alpha) * model.style_of_long(a) + alpha * model.style_of_long(b)
    limit = model.cfg.max_len
    for path, tokens in zip(args.interpolate, (a, b)):
        if tokens.shape[1] > limit:
            print(f"style {path}: pooled over all {tokens.shape[1]} tokens ({-(-tokens.shape[1] // limit)} windows)")
    return style


def _style_inputs(args: argparse.Namespace, model, encoding) -> tuple:
    """(style vector, performance tokens) for --interpolate or --style; either may be None."""
    import torch

    if args.interpolate:
        return _interpolated_style(args, model, encoding), None
    if not args.style:
        return None, None
    tokens, limit = _midi_ids(args.style, encoding), model.cfg.max_len
    if not model.pool:
        return None, _cut(args.style, tokens, limit, "style", encoding)
    with torch.no_grad():
        style = model.style_of_long(tokens)
    if tokens.shape[1] > limit:
        print(f"style {args.style}: pooled over all {tokens.shape[1]} tokens "
              f"({-(-tokens.shape[1] // limit)} windows of {limit})")  # fmt: skip
    return style, None


def _generate(args: argparse.Namespace) -> int:
    from etude.music.events import PerformanceEncoding
    from etude.music.generate import generate
    from etude.music.melody import MelodyEncoding

    check_output_file(args.output)
    model = _load_generator(args.checkpoint)
    _check_generate_options(args, model)
    enc, limit = PerformanceEncoding(), model.cfg.max_len
    style, performance = _style_inputs(args, model, enc)
    melody = None
    if args.melody:
        menc = MelodyEncoding()
        melody = _cut(args.melody, _midi_ids(args.melody, menc), limit, "melody", menc)
    tokens = generate(
        model,
        args.batch,
        max_length=args.length or limit,
        performance=performance,
        melody=melody,
        style=style,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    )
    out = Path(args.output)
    decoded = [enc.decode(tokens[i, 1:]) for i in range(args.batch)]
    for i, sample in enumerate(decoded):
        path = out if args.batch == 1 else out.with_name(f"{out.stem}_{i}{out.suffix}")
        sample.to_midi(path)
        print(f"wrote {len(sample)} notes ({sample.duration:.2f} s) to {path}")
    _print_texture(args.checkpoint, decoded, [tokens[i, 1:].numpy() for i in range(args.batch)])
    return 0


def _print_texture(checkpoint: str, decoded: list, ids: list) -> None:
    """The music-likeness figures of the generation, beside the held-out data's when ``train`` recorded them."""
    from etude.music.criteria import music_like_rule
    from etude.music.likeness import music_figures
    from etude.runtime import load_checkpoint

    figures = music_figures(decoded, ids)
    data = load_checkpoint(checkpoint).get("data_figures")
    names = ("polyphony", "note_seconds", "ioi_seconds", "pitch_range", "held_to_end", "orphan_note_offs")
    parts = [
        f"{name} {figures[name]:.3g}" + ("" if data is None else f" (data {data[name]:.3g})")
        for name in names
    ]  # fmt: skip
    line = "texture: " + ", ".join(parts)
    if data is not None:
        rule = music_like_rule(figures, data)
        off = [k for k, c in rule["checks"].items() if not c["ok"]]
        line += "; like the data" if rule["holds"] else "; unlike the data in " + ", ".join(off)
    print(line)


def _keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keys",
        type=int,
        choices=[128, 88],
        default=128,
        help="128 MIDI pitches (388 events) or 88 piano keys (308 events)",
    )


def _add_encode(verbs: argparse._SubParsersAction) -> None:
    enc = verbs.add_parser("encode", help="a MIDI file as performance token ids")
    enc.add_argument("file", help="a .mid file")
    enc.add_argument("-o", "--output", help="write the ids here (.npy or text) instead of stdout")
    enc.add_argument("--bos", action="store_true", help="start with the BOS id")
    enc.add_argument("--eos", action="store_true", help="end with the EOS id")
    _keys(enc)
    enc.set_defaults(func=_encode)


def _add_decode(verbs: argparse._SubParsersAction) -> None:
    dec = verbs.add_parser("decode", help="token ids (any sequence) as a MIDI file")
    dec.add_argument("ids", help="a text file of integer ids, a .npy array, or - for stdin")
    dec.add_argument("-o", "--output", required=True, help="the .mid file to write")
    _keys(dec)
    dec.set_defaults(func=_decode)


def _add_corpus(verbs: argparse._SubParsersAction) -> None:
    cor = verbs.add_parser("corpus", help="the music21 corpus as styled performances (cached)")
    cor.add_argument("--stats", action="store_true", help="print pieces, splits, notes and tokens (default)")
    cor.add_argument("--export", metavar="DIR", help="write each performance (.mid) and style (.json) under DIR")
    cor.add_argument("--collection", default="bach", help="bach (default), monteverdi, palestrina or quartets")
    cor.add_argument("--limit", type=int, default=None, help="only the first N pieces")
    cor.add_argument("--seed", type=int, default=0, help="selects the performance styles")
    cor.add_argument("--cache", default=None, help="cache folder (default $ETUDE_CACHE or ~/.cache/etude)")
    cor.add_argument("--json", action="store_true", help="print the statistics as one JSON line")
    _keys(cor)
    cor.set_defaults(func=_corpus)


def _add_similarity(verbs: argparse._SubParsersAction) -> None:
    sim = verbs.add_parser("similarity", help="overlapping-area (OA) similarity of two MIDI files")
    sim.add_argument("a")
    sim.add_argument("b")
    sim.add_argument("--window", type=float, default=2.0, help="window length in seconds (default 2)")
    sim.add_argument("--hop", type=float, default=1.0, help="hop between windows in seconds (default 1)")
    sim.add_argument("--features", action="store_true", help="also print each feature's overlap")
    sim.set_defaults(func=_similarity)


def _add_plot(verbs: argparse._SubParsersAction) -> None:
    plot = verbs.add_parser("plot", help="a piano-roll PNG of a MIDI file")
    plot.add_argument("file")
    plot.add_argument("-o", "--output", required=True, help="the .png file to write")
    plot.add_argument("--melody", action="store_true", help="outline the highest-pitch skyline")
    plot.set_defaults(func=_plot)


_CONDITIONINGS = ("none", "performance", "melody", "melody+performance")
"""autoencoder.CONDITIONINGS, repeated so that building the parser imports no torch."""


def _add_train(verbs: argparse._SubParsersAction) -> None:
    tr = verbs.add_parser("train", help="train a Transformer autoencoder on Bach chorales or a MIDI folder")
    tr.add_argument("--out", required=True, help="folder for training.pt (resumable) and model.pt")
    tr.add_argument("--conditioning", choices=_CONDITIONINGS, default="performance")
    tr.add_argument(
        "--combine", choices=("sum", "concat", "tile"), default="sum", help="melody+performance combination"
    )
    tr.add_argument("--unpooled", action="store_true", help="no mean pooling (the copying baseline)")
    tr.add_argument("--absolute", action="store_true", help="absolute positions only (no relative attention)")
    tr.add_argument(
        "--midi-dir",
        metavar="DIR",
        help="train on the .mid/.midi files under DIR (tokenized once, "
        "cached in $ETUDE_CACHE, split by file) instead of the Bach chorales",
    )
    tr.add_argument("--held-out", type=float, default=0.1, help="fraction of --midi-dir files held out (default 0.1)")
    tr.add_argument("--pieces", type=int, default=40, help="first N chorales (0: all 408)")
    tr.add_argument("--seconds", type=float, default=2.5, help="window length of each chorale crop")
    tr.add_argument("--max-tokens", type=int, default=64, help="tokens per crop (the model's max_len)")
    tr.add_argument("--per-piece", type=int, default=8, help="crops per training piece (or --midi-dir file)")
    tr.add_argument("--dim", type=int, default=64)
    tr.add_argument("--heads", type=int, default=4)
    tr.add_argument("--layers", type=int, default=2)
    tr.add_argument("--dropout", type=float, default=0.0)
    tr.add_argument("--steps", type=int, default=200)
    tr.add_argument("--batch-size", type=int, default=16)
    tr.add_argument("--lr", type=float, default=2e-3)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--cache", default=None, help="cache folder (default $ETUDE_CACHE or ~/.cache/etude)")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/training.pt")
    tr.set_defaults(func=_train)


def _add_generate(verbs: argparse._SubParsersAction) -> None:
    gen = verbs.add_parser("generate", help="sample performances from a trained model")
    gen.add_argument("--checkpoint", required=True, help="a model.pt written by `etude music train`")
    gen.add_argument("--style", help="a .mid performance whose style conditions the sample")
    gen.add_argument("--melody", help="a .mid melody (its skyline) to accompany")
    gen.add_argument("--interpolate", nargs=2, metavar=("A.mid", "B.mid"), help="mix the styles of two performances")
    gen.add_argument(
        "--alpha", type=float, default=None, help="with --interpolate: weight of B (0: A, 1: B; default 0.5)"
    )
    gen.add_argument("-o", "--output", required=True, help="the .mid file (batch > 1: _0, _1, ... suffixes)")
    gen.add_argument("--length", type=int, default=0, help="tokens including BOS (default: the model's max_len)")
    gen.add_argument("--batch", type=int, default=1)
    gen.add_argument("--temperature", type=float, default=1.0)
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--seed", type=int, default=0)
    gen.set_defaults(func=_generate)


def add_commands(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `etude music encode|decode|corpus|similarity|plot|train|generate` to the top-level subcommands."""
    music = sub.add_parser("music", help="symbolic music: performance tokens, corpus, similarity")
    verbs = music.add_subparsers(dest="verb", required=True, parser_class=parser_class)
    for add in (_add_encode, _add_decode, _add_corpus, _add_similarity, _add_plot, _add_train, _add_generate):
        add(verbs)
