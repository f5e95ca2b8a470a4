"""What a study needs of `etude.data`: one image set by name, a dataset's identity, a checked name.

A study's preset names its dataset (``dataset``, ``data_dir``); ``"digits"`` is the bundled stand-in
(scikit-learn's 8x8 digits) that every quick tier keeps, so that ``make reproduce`` needs no download.
`dataset_identity` is what ``run-record.json`` stores of the files read (``Study.data_identity``), so a
``--resume`` on other data refuses.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from etude.data.catalog import get_spec
from etude.data.cifar import load_cifar10
from etude.data.images import LabelledImages
from etude.data.mnist import load_fashion_mnist, load_mnist
from etude.errors import BadInputError

__all__ = ["BUNDLED", "IMAGE_SETS", "check_dataset", "dataset_identity", "load_images", "take"]

BUNDLED = "digits"
"""The bundled stand-in every study had before: scikit-learn's 1,797 8x8 digits."""

IMAGE_SETS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10}
"""Labelled image sets with a train and a test split, by `etude data` name."""


def check_dataset(field: str, name: str, allowed: tuple[str, ...]) -> str:
    """``name`` when it is one of ``allowed``; else one BadInputError line naming the choices."""
    if name not in allowed:
        raise BadInputError(f"{field} must be one of {', '.join(allowed)}, got {name!r}")
    return name


def load_images(name: str, split: str, data_dir: str | None = None, download: bool = False) -> LabelledImages:
    """``split`` ('train' or 'test') of the image set ``name`` (a key of IMAGE_SETS)."""
    check_dataset("dataset", name, tuple(IMAGE_SETS))
    return IMAGE_SETS[name](split, data_dir or None, download)


def take(images: LabelledImages, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` items (all when ``n`` is 0 or more than there are): (images, labels)."""
    count = len(images)
    if n <= 0 or n >= count:
        return images.images, images.labels
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:n]
    return images.images[order], images.labels[order]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def dataset_identity(name: str, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What a run record keeps of dataset ``name`` as found: its name, file count, bytes and a digest of
    the (relative path, size) listing; MissingDataError (one line) when it is absent.

    The folder's path is left out (the same files elsewhere are the same data); a file added, removed,
    renamed or resized changes the digest.
    """
    folder = get_spec(name).locate(data_dir or None)
    digest = hashlib.sha1()
    total = 0
    files = _files(folder)
    for path in files:
        size = path.stat().st_size
        total += size
        digest.update(f"{path.relative_to(folder).as_posix()}\t{size}\n".encode())
    return {"dataset": name, "files": len(files), "bytes": total, "listing_sha1": digest.hexdigest()[:16]}
