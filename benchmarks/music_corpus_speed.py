"""Seconds to turn the Bach corpus into token ids: from the parsed cache against parsing with music21.

Run: .venv/bin/python benchmarks/music_corpus_speed.py [--collection bach] [--limit N] [--cache DIR] [--seed 0]

1. parse: every score file parsed with music21 (what a pipeline without the cache pays every
   time), written into a fresh cache (a temporary folder unless --cache names one);
2. cached: the same scores read back from that cache, every piece played in its style
   (`etude.music.load_corpus`) and encoded with `PerformanceEncoding()` (388 events).
Prints one JSON line: both times, their ratio, and the corpus statistics (pieces, notes, tokens,
median tokens per piece), after checking that cached and freshly parsed scores are identical.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="bach")
    parser.add_argument("--limit", type=int, default=None, help="only the first N pieces (default all)")
    parser.add_argument("--cache", default=None, help="cache folder to build (default a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import music21

    from etude.music import PerformanceEncoding, load_corpus, load_scores
    from etude.music.corpus import source_files

    source_files(args.collection, args.limit)  # music21's corpus index, outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or tmp
        start = time.perf_counter()
        parsed, path = load_scores(args.collection, limit=args.limit, cache=cache, show_progress=False)
        t_parse = time.perf_counter() - start
        if not path.exists():
            raise SystemExit(f"no cache file at {path}")

        start = time.perf_counter()
        corpus = load_corpus(args.collection, limit=args.limit, seed=args.seed, cache=cache, show_progress=False)
        t_load = time.perf_counter() - start
        encoding = PerformanceEncoding()
        start = time.perf_counter()
        ids = [encoding.encode(piece.performance) for piece in corpus.pieces]
        t_encode = time.perf_counter() - start
        cached, _ = load_scores(args.collection, limit=args.limit, cache=cache, show_progress=False)

    same = all(a.name == b.name and np.array_equal(a.pitch, b.pitch) and np.array_equal(a.onset, b.onset)
               for a, b in zip(parsed, cached))
    tokens = np.array([i.size for i in ids])
    t_cached = t_load + t_encode
    print(json.dumps({
        "benchmark": "music_corpus_speed", "collection": args.collection, "pieces": len(corpus),
        "seed": args.seed, "parse_s": round(t_parse, 2), "cache_load_and_play_s": round(t_load, 2),
        "encode_s": round(t_encode, 2), "cached_total_s": round(t_cached, 2), "ratio": round(t_parse / t_cached, 1),
        "notes": int(sum(len(p.performance) for p in corpus.pieces)),
        "hours": round(sum(p.performance.duration for p in corpus.pieces) / 3600, 2),
        "tokens": int(tokens.sum()), "median_tokens": float(np.median(tokens)),
        "tokens_per_s_cached": round(tokens.sum() / t_cached), "cache_matches_parse": same,
        "music21": music21.__version__, "numpy": np.__version__, "machine": platform.machine(),
    }))


if __name__ == "__main__":
    main()
