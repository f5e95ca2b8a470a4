"""Every dataset etude knows, and what a machine holds of each (what `etude data` prints)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from etude.data.cifar import CIFAR10
from etude.data.maestro import MAESTRO
from etude.data.mnist import FASHION_MNIST, MNIST
from etude.data.omniglot import OMNIGLOT
from etude.data.piano import PIANO
from etude.data.smallnorb import SMALLNORB
from etude.data.spec import DatasetSpec
from etude.errors import BadInputError, EtudeError, one_line

__all__ = ["DATASETS", "Status", "checksum_report", "get_spec", "status"]

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (FASHION_MNIST, MNIST, CIFAR10, OMNIGLOT, SMALLNORB, MAESTRO, PIANO)
}


def get_spec(name: str) -> DatasetSpec:
    """The dataset called ``name``; BadInputError listing the names otherwise."""
    if name not in DATASETS:
        raise BadInputError(f"unknown dataset {name!r}; etude knows {', '.join(DATASETS)}")
    return DATASETS[name]


@dataclass(frozen=True)
class Status:
    """Where a dataset was looked for and what was found: ``folder`` is None when it is absent."""

    spec: DatasetSpec
    looked: tuple[Path, ...]
    folder: Path | None
    summary: str


def status(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None = None) -> Status:
    """Look for ``spec`` (headers only, no full read)."""
    folder = spec.find(data_dir)
    summary = ""
    if folder is not None:
        try:
            summary = spec.summary(folder)
        except EtudeError as exc:
            summary = f"damaged: {one_line(exc)}"
    return Status(spec, tuple(spec.candidates(data_dir)), folder, summary)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_report(spec: DatasetSpec, folder: Path) -> list[str]:
    """One line per file with a published MD5: 'matches' or 'differs'; files absent in ``folder`` are skipped."""
    lines = []
    for name, expected in spec.checksums.items():
        if (folder / name).is_file():
            if _md5(folder / name) == expected:
                lines.append(f"{name}: MD5 matches the published {expected}")
            else:
                note = " (re-gzipped, as Debian's package is; the load above checked its contents)"
                lines.append(
                    f"{name}: MD5 differs from the published {expected}" + (note if name.endswith(".gz") else "")
                )
    return lines
