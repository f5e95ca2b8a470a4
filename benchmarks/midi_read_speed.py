"""Notes per second of MIDI reading: etude's reader (symusic underneath) against the mido reader it replaced.

Run: .venv/bin/python benchmarks/midi_read_speed.py [--repeats 5] [--files DIR] [--before COMMIT]

Files: movements of music21 scores outside Bach, written to MIDI by music21 once and kept in
DIR (default ``$ETUDE_CACHE/midi-benchmark``; writing them takes music21 10-20 s each).
Timed on the same files, one thread, best of ``--repeats`` passes (more for a fast reader, as
many as fill 2 s, like timeit):

- ``before``: ``etude.music.midi.read_midi`` as of COMMIT (default d77214c, the last mido
  reader: first-in-first-out pairing in Python), loaded from git;
- ``after``: today's ``read_midi``;
- for reference, when installed: ``pretty_midi.PrettyMIDI``, ``mido.MidiFile`` (parsing only)
  and ``symusic.Score`` (parsing only).

Prints one JSON line: notes, seconds and notes/s of each, ``speedup`` = before / after time,
and how many notes of each file the before and after readers get.
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


def _best(read, files, repeats: int) -> tuple[float, int]:
    """Best seconds over the files, of ``repeats`` passes or as many as fill 2 s (timeit's way)."""
    best, passes, spent = float("inf"), 0, 0.0
    while passes < repeats or (spent < 2.0 and passes < 500):
        start = time.perf_counter()
        for file in files:
            read(file)
        seconds = time.perf_counter() - start
        best, passes, spent = min(best, seconds), passes + 1, spent + seconds
    return best, passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--files", default=None, help="folder of the MIDI files (written there when missing)")
    parser.add_argument("--before", default="d77214c", help="git commit of the reader to compare with")
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
    for name, read in readers.items():
        seconds, passes = _best(read, files, args.repeats)
        result[f"{name}_s"] = round(seconds, 4)
        result[f"{name}_passes"] = passes
        result[f"{name}_notes_per_s"] = round(total / seconds)
    if "before" in readers:
        result["speedup"] = round(result["before_s"] / result["after_s"], 1)
    result.update(repeats=args.repeats, before_commit=args.before if before else None, python=sys.version.split()[0],
                  numpy=np.__version__, machine=platform.machine(), cpus=os.cpu_count(),
                  date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
