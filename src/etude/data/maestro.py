"""MAESTRO v3.0.0 (Hawthorne et al. 2019, arXiv:1810.12247): 1,276 piano performances as MIDI, with
``maestro-v3.0.0.csv`` naming each file and its split (train, validation, test; a composition is in one
split only). Reading the MIDI files themselves is etude.music's work.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from etude.data.spec import DatasetSpec
from etude.errors import BadInputError, one_line

__all__ = ["CSV_NAME", "MAESTRO", "SPLITS", "maestro_splits", "read_maestro_csv"]

CSV_NAME = "maestro-v3.0.0.csv"
SPLITS = ("train", "validation", "test")


def read_maestro_csv(path: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """Split -> the MIDI paths the CSV names (relative to its folder), each checked to exist."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInputError(f"{path}: unreadable MAESTRO CSV ({one_line(exc)})") from exc
    if not rows or not {"split", "midi_filename"} <= set(rows[0]):
        raise BadInputError(f"{path}: a MAESTRO CSV has a header with split and midi_filename and one row per piece")
    splits: dict[str, list[Path]] = {s: [] for s in SPLITS}
    missing = []
    for line, row in enumerate(rows, start=2):
        if row["split"] not in splits:
            raise BadInputError(f"{path}: line {line}: split {row['split']!r} is not train, validation or test")
        midi = path.parent / (row["midi_filename"] or "")
        if not row["midi_filename"] or not midi.is_file():
            missing.append(midi)
        splits[row["split"]].append(midi)
    if missing:
        raise BadInputError(f"{path}: names {len(missing)} MIDI files that are not there, the first {missing[0]}")
    return splits


def maestro_splits(data_dir: str | os.PathLike[str] | None = None) -> dict[str, list[Path]]:
    """MAESTRO's official splits: {'train': [...], 'validation': [...], 'test': [...]} of MIDI paths."""
    return read_maestro_csv(MAESTRO.locate(data_dir) / CSV_NAME)


def _problem(folder: Path) -> str | None:
    return None if (folder / CSV_NAME).is_file() else f"no {CSV_NAME}"


def _summary(folder: Path) -> str:
    try:
        with open(folder / CSV_NAME, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return f"unreadable {CSV_NAME} ({one_line(exc)})"
    counts = {s: sum(1 for r in rows if r.get("split") == s) for s in SPLITS}
    present = sum(1 for r in rows if r.get("midi_filename") and (folder / r["midi_filename"]).is_file())
    return f"{len(rows):,} performances ({present:,} MIDI files present): " + ", ".join(
        f"{n} {s}" for s, n in counts.items()
    )


MAESTRO = DatasetSpec(
    name="maestro",
    title="MAESTRO v3.0.0",
    subdirs=("maestro-v3.0.0",),
    problem=_problem,
    summary=_summary,
    how="fetch https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/maestro-v3.0.0-midi.zip and unzip it in DIR",
    expected="1,276 performances (962 train, 137 validation, 177 test) as MIDI, and maestro-v3.0.0.csv",
    used_by="transformer_ae full preset (train split trained on, test split held out)",
)
