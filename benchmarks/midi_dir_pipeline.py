"""Throughput and peak memory of the `--midi-dir` data pipeline on a synthetic folder of small MIDI files.

Run: .venv/bin/python benchmarks/midi_dir_pipeline.py [--files 20000] [--max-tokens 256] [--batches 5000]

1. write ``--files`` random piano performances (8-64 notes, 2-20 s, pitches 21-108, in 20 subfolders)
   with etude's own MIDI writer into a temporary folder (not timed as part of the pipeline);
2. tokenize: ``etude.music.tokens.tokenize_midi_dir`` into a fresh cache, in a subprocess: files/s,
   tokens/s, peak RSS (``ru_maxrss``), cache size on disk;
3. reuse: the same call again in a new subprocess (content hash of every file + SHA-256 check of the
   streams, no MIDI read: the read calls are counted);
4. stream: ``etude.music.stream.StreamCrops`` over the training split (90 %), ``--per-file`` crops per
   file, then ``--batches`` random batches of ``--batch-size`` crops through ``select``, as ``fit``
   draws them: crops/s, non-PAD performance tokens/s, peak RSS.
Every stage runs with 1 thread (torch and BLAS). Writes one JSON file (``--out``) and prints it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _write_folder(root: Path, files: int, seed: int) -> dict:
    import numpy as np

    from etude.music import Performance

    rng = np.random.default_rng(seed)
    notes_total, seconds_total = 0, 0.0
    start_time = time.perf_counter()
    for i in range(files):
        n = int(rng.integers(8, 65))
        length = float(rng.uniform(2.0, 20.0))
        start = np.sort(rng.uniform(0.0, length, n))
        end = start + rng.uniform(0.05, 1.5, n)
        Performance.from_arrays(rng.integers(21, 109, n), rng.integers(20, 120, n), start, end).to_midi(
            root / f"set{i % 20:02d}" / f"piece{i:05d}.mid")
        notes_total += n
        seconds_total += float(end.max())
    size = sum(f.stat().st_size for f in root.rglob("*.mid"))
    return {"files": files, "notes": notes_total, "hours": round(seconds_total / 3600, 2),
            "folder_bytes": size, "write_s": round(time.perf_counter() - start_time, 1)}


def _stage_tokenize(folder: str, cache: str) -> dict:
    import etude.music.tokens as tokens_module

    calls = []
    read = tokens_module.read_midi
    tokens_module.read_midi = lambda path: calls.append(1) or read(path)
    before = _rss_mb()
    start = time.perf_counter()
    tokens = tokens_module.tokenize_midi_dir(folder, cache=cache, show_progress=False)
    seconds = time.perf_counter() - start
    stats = tokens.stats()
    size = sum(f.stat().st_size for f in tokens.entry.iterdir())
    return {"seconds": round(seconds, 2), "built": tokens.built, "read_midi_calls": len(calls),
            "files": len(tokens), "skipped": len(tokens.skipped), "tokens": stats["tokens"],
            "melody_frames": stats["melody_frames"], "hours": stats["hours"],
            "files_per_s": round(len(tokens) / seconds, 1), "tokens_per_s": round(stats["tokens"] / seconds),
            "cache_bytes": size, "cache_mb": round(size / 2**20, 2),
            "rss_after_imports_mb": round(before, 1), "peak_rss_mb": round(_rss_mb(), 1)}


def _stage_stream(folder: str, cache: str, max_tokens: int, per_file: int, batches: int, batch_size: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from etude.music.stream import StreamCrops
    from etude.music.tokens import tokenize_midi_dir
    from etude.music.training import PAD

    tokens = tokenize_midi_dir(folder, cache=cache, show_progress=False)
    train, held = tokens.split(0.1)
    before = _rss_mb()
    start = time.perf_counter()
    data = StreamCrops(tokens, train, max_tokens=max_tokens, count=per_file * train.size, seed=0)
    draw_s = time.perf_counter() - start
    generator = torch.Generator().manual_seed(0)
    crops, performance_tokens, melody_tokens = 0, 0, 0
    start = time.perf_counter()
    for _ in range(batches):
        batch = data.select(torch.randint(len(data), (batch_size,), generator=generator))
        crops += batch_size
        performance_tokens += int((batch.performance != PAD).sum())
        melody_tokens += int((batch.melody != PAD).sum())
    seconds = time.perf_counter() - start
    return {"train_files": int(train.size), "held_out_files": int(held.size), "crops_defined": len(data),
            "draw_windows_s": round(draw_s, 2), "batches": batches, "batch_size": batch_size,
            "max_tokens": max_tokens, "seconds": round(seconds, 2), "crops_per_s": round(crops / seconds),
            "tokens_per_s": round(performance_tokens / seconds),
            "mean_tokens_per_crop": round(performance_tokens / crops, 1),
            "mean_melody_frames_per_crop": round(melody_tokens / crops, 1),
            "rss_after_open_mb": round(before, 1), "peak_rss_mb": round(_rss_mb(), 1)}


def _run_stage(*args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, __file__, "--stage", *args], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"stage {args[0]} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--per-file", type=int, default=8, help="crops defined per training file")
    parser.add_argument("--batches", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / f"midi_dir_pipeline_{datetime.date.today()}.json"))
    parser.add_argument("--stage", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        name, folder, cache = args.stage[:3]
        if name == "tokenize":
            result = _stage_tokenize(folder, cache)
        else:
            result = _stage_stream(folder, cache, args.max_tokens, args.per_file, args.batches, args.batch_size)
        print(json.dumps(result))
        return

    import numpy as np
    import symusic
    import torch

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent, check=False).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "midi", Path(tmp) / "cache"
        written = _write_folder(folder, args.files, args.seed)
        tokenize = _run_stage("tokenize", str(folder), str(cache))
        reuse = _run_stage("tokenize", str(folder), str(cache))
        stream = _run_stage("stream", str(folder), str(cache), "--max-tokens", str(args.max_tokens),
                            "--per-file", str(args.per_file), "--batches", str(args.batches),
                            "--batch-size", str(args.batch_size))
    result = {
        "benchmark": "midi_dir_pipeline", "date": str(datetime.date.today()), "commit": commit,
        "folder": written, "tokenize": tokenize, "reuse": reuse, "stream": stream,
        "threads": 1, "load_average": [round(x, 1) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
        "symusic": symusic.__version__, "machine": platform.machine(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
