"""`etude music ...` verbs: encode, decode, corpus, similarity, plot.

    etude music encode piece.mid [--keys 88] [-o ids.txt]   # token ids, space-separated
    etude music decode ids.txt -o piece.mid                 # any ids -> a playable MIDI file
    etude music corpus --stats [--collection bach --limit 20 --seed 0]
    etude music similarity a.mid b.mid [--features]         # OA similarity in [0, 1]
    etude music plot piece.mid -o roll.png [--melody]       # piano roll (melody outlined)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

from etude.errors import BadInputError


def _read_ids(source: str) -> np.ndarray:
    """Ids from a .npy file, a text file of integers (spaces, commas, newlines) or '-' (stdin)."""
    if source == "-":
        text = sys.stdin.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise BadInputError(f"ids file {path} does not exist")
        if path.suffix == ".npy":
            try:
                return np.load(path, allow_pickle=False)
            except Exception as error:
                raise BadInputError(f"ids file {path} is not a readable .npy array ({type(error).__name__})") from error
        try:
            text = path.read_text()
        except UnicodeDecodeError as error:
            raise BadInputError(f"ids file {path} is not text of integers (or a .npy array)") from error
    words = [w for w in re.split(r"[\s,]+", text.strip().strip("[]")) if w]
    for i, word in enumerate(words):
        if not re.fullmatch(r"[+-]?\d+", word):
            raise BadInputError(f"ids: item {i} is {word[:20]!r}, expected an integer id")
    return np.array([int(w) for w in words], dtype=np.int64)


def _encoding(args: argparse.Namespace):
    from etude.music.events import PerformanceEncoding

    return PerformanceEncoding(keys=args.keys)


def _encode(args: argparse.Namespace) -> int:
    from etude.music.performance import Performance

    ids = _encoding(args).encode(Performance.from_midi(args.file), bos=args.bos, eos=args.eos)
    if args.output is None:
        try:
            print(" ".join(map(str, ids.tolist())), flush=True)
        except BrokenPipeError:  # e.g. `etude music encode x.mid | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    elif args.output.endswith(".npy"):
        np.save(args.output, ids)
    else:
        Path(args.output).write_text(" ".join(map(str, ids.tolist())) + "\n")
    if args.output is not None:
        print(f"wrote {ids.size} ids to {args.output}")
    return 0


def _decode(args: argparse.Namespace) -> int:
    performance = _encoding(args).decode(_read_ids(args.ids))
    performance.to_midi(args.output)
    print(f"wrote {len(performance)} notes ({performance.duration:.2f} s) to {args.output}")
    return 0


def _corpus(args: argparse.Namespace) -> int:
    from etude.music.corpus import load_corpus

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

    performance = Performance.from_midi(args.file)
    melody = skyline(performance) if args.melody else None
    plot_piano_roll(performance, args.output, title=Path(args.file).name, melody=melody)
    print(f"wrote {args.output}")
    return 0


def add_commands(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `etude music encode|decode|corpus|similarity|plot` to the top-level subcommands."""
    music = sub.add_parser("music", help="symbolic music: performance tokens, corpus, similarity")
    verbs = music.add_subparsers(dest="verb", required=True, parser_class=parser_class)

    def keys(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--keys", type=int, choices=[128, 88], default=128,
                            help="128 MIDI pitches (388 events) or 88 piano keys (308 events)")

    enc = verbs.add_parser("encode", help="a MIDI file as performance token ids")
    enc.add_argument("file", help="a .mid file")
    enc.add_argument("-o", "--output", help="write the ids here (.npy or text) instead of stdout")
    enc.add_argument("--bos", action="store_true", help="start with the BOS id")
    enc.add_argument("--eos", action="store_true", help="end with the EOS id")
    keys(enc)
    enc.set_defaults(func=_encode)

    dec = verbs.add_parser("decode", help="token ids (any sequence) as a MIDI file")
    dec.add_argument("ids", help="a text file of integer ids, a .npy array, or - for stdin")
    dec.add_argument("-o", "--output", required=True, help="the .mid file to write")
    keys(dec)
    dec.set_defaults(func=_decode)

    cor = verbs.add_parser("corpus", help="the music21 corpus as styled performances (cached)")
    cor.add_argument("--stats", action="store_true", help="print pieces, splits, notes and tokens (default)")
    cor.add_argument("--export", metavar="DIR", help="write each performance (.mid) and style (.json) under DIR")
    cor.add_argument("--collection", default="bach", help="bach (default), monteverdi, palestrina or quartets")
    cor.add_argument("--limit", type=int, default=None, help="only the first N pieces")
    cor.add_argument("--seed", type=int, default=0, help="selects the performance styles")
    cor.add_argument("--cache", default=None, help="cache folder (default $ETUDE_CACHE or ~/.cache/etude)")
    cor.add_argument("--json", action="store_true", help="print the statistics as one JSON line")
    keys(cor)
    cor.set_defaults(func=_corpus)

    sim = verbs.add_parser("similarity", help="overlapping-area (OA) similarity of two MIDI files")
    sim.add_argument("a")
    sim.add_argument("b")
    sim.add_argument("--window", type=float, default=2.0, help="window length in seconds (default 2)")
    sim.add_argument("--hop", type=float, default=1.0, help="hop between windows in seconds (default 1)")
    sim.add_argument("--features", action="store_true", help="also print each feature's overlap")
    sim.set_defaults(func=_similarity)

    plot = verbs.add_parser("plot", help="a piano-roll PNG of a MIDI file")
    plot.add_argument("file")
    plot.add_argument("-o", "--output", required=True, help="the .png file to write")
    plot.add_argument("--melody", action="store_true", help="outline the highest-pitch skyline")
    plot.set_defaults(func=_plot)
