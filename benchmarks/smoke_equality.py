"""Every study's smoke result.json, compared with a reference run apart from timings.

Runs ``etude reproduce <study> --preset smoke --seed 0 --out DIR`` and compares each study's
``result.json`` with the one under a reference folder, ignoring the fields that measure time or
name versions (``wall_time_s``, ``versions``, pwcca's ``timings_s``, transformer_ae's
``run_seconds_before_report``). Every other
value must be equal: numbers bit for bit, strings, lists and dicts recursively.

    python benchmarks/smoke_equality.py run DIR [STUDY ...]          # write DIR/<study>/result.json
    python benchmarks/smoke_equality.py compare REF NEW [STUDY ...]  # print the differences; exit 1 on any
    python benchmarks/smoke_equality.py check REF NEW [STUDY ...]    # run into NEW, then compare

Record the reference from the code before a change (e.g. ``git archive`` of the branch's start into a
scratch folder, run with ``PYTHONPATH=<that>/src``), then check after each change.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

STUDIES = ("lola", "qmcvi", "pwcca", "bruno", "metavae", "transformer_ae", "amae")
_TIMING = re.compile(r"^(wall_time_s|versions|timings_s|run_seconds_before_report|elapsed_s|.*_wall_s)$")


def ignored(key: str) -> bool:
    """Whether a field measures time or names versions (left out of the comparison)."""
    return bool(_TIMING.search(str(key).lower()))


def differences(ref: Any, new: Any, where: str = "") -> list[str]:
    """Every place (dotted path) where ``new`` differs from ``ref``, timing fields left out."""
    if isinstance(ref, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(ref) | set(new), key=str):
            if ignored(key):
                continue
            path = f"{where}.{key}" if where else str(key)
            if key not in new or key not in ref:
                out.append(f"{path}: {'missing' if key not in new else 'new'}")
            else:
                out += differences(ref[key], new[key], path)
        return out
    if isinstance(ref, list) and isinstance(new, list):
        if len(ref) != len(new):
            return [f"{where}: length {len(ref)} -> {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(ref, new)) for d in differences(a, b, f"{where}[{i}]")]
    same = ref == new or (isinstance(ref, float) and isinstance(new, float) and math.isnan(ref) and math.isnan(new))
    return [] if same else [f"{where}: {ref!r} -> {new!r}"]


def run(out: Path, studies: list[str]) -> None:
    """``etude reproduce`` each study at the smoke preset, seed 0, into ``out``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ETUDE_PROGRESS": "0"}
    for study in studies:
        command = [sys.executable, "-m", "etude", "reproduce", study, "--preset", "smoke", "--seed", "0"]
        done = subprocess.run([*command, "--out", str(out)], env=env, capture_output=True, text=True)
        print(f"{study}: exit {done.returncode}", flush=True)
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")


def compare(ref: Path, new: Path, studies: list[str]) -> int:
    """Print each study's differences; the number of studies that differ."""
    failed = 0
    for study in studies:
        files = [folder / study / "result.json" for folder in (ref, new)]
        if not all(f.is_file() for f in files):
            print(f"{study}: MISSING {[str(f) for f in files if not f.is_file()]}")
            failed += 1
            continue
        found = differences(*(json.loads(f.read_text()) for f in files))
        print(f"{study}: {'identical apart from timings' if not found else f'{len(found)} differences'}")
        for line in found[:40]:
            print(f"  {line}")
        failed += bool(found)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("run", "compare", "check"))
    parser.add_argument("folders", nargs="+", type=Path)
    args, rest = parser.parse_known_args(argv)
    folders = [f for f in args.folders if str(f) not in STUDIES]
    studies = [str(f) for f in args.folders if str(f) in STUDIES] + rest or list(STUDIES)
    if args.mode == "run":
        run(folders[0], studies)
        return 0
    if args.mode == "check":
        run(folders[1], studies)
    return 1 if compare(folders[0], folders[1], studies) else 0


if __name__ == "__main__":
    sys.exit(main())
