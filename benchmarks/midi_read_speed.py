"""Notes per second of MIDI reading: etude's reader against symusic's parse and an earlier reader.

Run: .venv/bin/python benchmarks/midi_read_speed.py [--repeats 5] [--files DIR] [--before COMMIT] [--out JSON]

Files: movements of music21 scores outside Bach, written to MIDI by music21 once and kept in
DIR (default ``$ETUDE_CACHE/midi-benchmark``; writing them takes music21 10-20 s each).
Timed on the same files, one thread, the best pass of ``--repeats`` rounds in which each reader
runs in turn (a fast reader as many passes per round as fill 0.2 s):

- ``before``: ``etude.music.midi.read_midi`` as of COMMIT (default 020b3e9, the reader built
  on symusic that appended closing note-offs and parsed each file twice; d77214c is the last
  mido reader), loaded from git;
- ``after``: today's ``etude.music.read_midi`` (numba-compiled, warmed up before timing);
- for reference, when installed: ``pretty_midi.PrettyMIDI``, ``mido.MidiFile`` (parsing only)
  and ``symusic.Score`` (parsing only: notes paired first-in-first-out, no pedal, no seconds).

Prints one JSON line (and writes it to ``--out``): notes, seconds and notes/s of each,
``speedup`` = before / after time, ``etude_over_symusic`` = after / symusic time (issue 28's
target: at most 3), how many notes of each file the before and after readers get, the date
and the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import types
from pathlib import Path

PIECES = ("haydn/opus74no1/movement2", "mozart/k80/movement2", "monteverdi/madrigal.3.1",
          "joplin/maple_leaf_rag", "schumann/opus41no1/movement2", "beethoven/opus18no1/movement2")


def _files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name in PIECES:
        path = folder / (name.replace("/", "_") + ".mid")
        if not path.exists():
            from music21 import corpus

            tmp = path.with_suffix(".tmp.mid")
            corpus.parse(name).write("midi", fp=tmp)
            os.replace(tmp, path)
        files.append(path)
    return files


def _old_reader(commit: str):
    """``read_midi`` of an earlier commit, from git (None when git or the commit is missing)."""
    root = Path(__file__).resolve().parents[1]
    try:
        source = subprocess.run(["git", "show", f"{commit}:src/etude/music/midi.py"], cwd=root, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("etude_midi_before")
    exec(compile(source, f"{commit}:midi.py", "exec"), module.__dict__)
    return module.read_midi


def _pass(read, files) -> float:
    start = time.perf_counter()
    for file in files:
        read(file)
    return time.perf_counter() - start


def _best(readers: dict, files, repeats: int) -> dict[str, tuple[float, int]]:
    """Best seconds of one pass over the files, per reader: ``repeats`` rounds in which every
    reader runs in turn (so that a loaded machine slows them alike), each reader as many passes
    per round as fill about 0.2 s."""
    inner = {name: max(1, min(200, int(0.2 / max(_pass(read, files), 1e-6)))) for name, read in readers.items()}
    best = {name: float("inf") for name in readers}
    for _ in range(repeats):
        for name, read in readers.items():
            best[name] = min(best[name], min(_pass(read, files) for _ in range(inner[name])))
    return {name: (best[name], repeats * inner[name]) for name in readers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--files", default=None, help="folder of the MIDI files (written there when missing)")
    parser.add_argument("--before", default="020b3e9", help="git commit of the reader to compare with")
    parser.add_argument("--out", default=None, help="also write the JSON line to this file")
    args = parser.parse_args()

    import numpy as np

    from etude.music import read_midi
    from etude.runtime.cache import cache_dir

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    files = _files(Path(args.files) if args.files else cache_dir() / "midi-benchmark")
    readers = {"after": read_midi}
    before = _old_reader(args.before)
    if before is not None:
        readers["before"] = before
    for name, make in (("pretty_midi", lambda m: m.PrettyMIDI), ("mido_parse_only", lambda m: m.MidiFile),
                       ("symusic_parse_only", lambda m: m.Score)):
        try:
            module = __import__(name.split("_parse")[0])
        except ImportError:
            continue
        readers[name] = (lambda f, m=module, k=make: k(m)(str(f)))
    notes = {name: [len(readers[name](f)) for f in files] for name in ("after", "before") if name in readers}
    total = sum(notes["after"])
    result = {"benchmark": "midi_read_speed", "files": [f.name for f in files], "notes": total,
              "notes_per_file": notes}
    for name, (seconds, passes) in _best(readers, files, args.repeats).items():
        result[f"{name}_s"] = round(seconds, 5)
        result[f"{name}_passes"] = passes
        result[f"{name}_notes_per_s"] = round(total / seconds)
    if "before" in readers:
        result["speedup"] = round(result["before_s"] / result["after_s"], 1)
    if "symusic_parse_only" in readers:
        result["etude_over_symusic"] = round(result["after_s"] / result["symusic_parse_only_s"], 2)
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True, capture_output=True,
                                text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    result.update(commit=commit, repeats=args.repeats, before_commit=args.before if before else None, python=sys.version.split()[0],
                  numpy=np.__version__, machine=platform.machine(), cpus=os.cpu_count(),
                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    line = json.dumps(result)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")


if __name__ == "__main__":
    main()
