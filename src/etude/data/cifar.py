"""CIFAR-10 (Krizhevsky 2009) as the python pickles of ``cifar-10-batches-py``: five training batches and one
test batch of 10,000 32x32 colour images each.

Read here: torchvision's ``CIFAR10`` refuses any batch whose MD5 differs from the release's, so it could not
read a re-packed copy or the tests' tiny batches; it remains the path for ``download=True``. The pickles are
read with an unpickler that builds NumPy arrays and nothing else.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from etude.data.images import LabelledImages
from etude.data.spec import DatasetSpec
from etude.errors import BadInputError, one_line

__all__ = ["CIFAR10", "CLASSES", "load_cifar10", "read_batch"]

TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = ("test_batch",)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PIXELS = 3 * 32 * 32

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how pickle protocol 2 writes bytes from Python 3
}


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that refuses every global but NumPy's array and dtype constructors."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnly(f, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError, MemoryError) as exc:
        # MemoryError: a damaged length field asks for more than the machine has
        raise BadInputError(f"{path}: not a readable CIFAR-10 batch ({type(exc).__name__}: {one_line(exc)})") from exc
    if not isinstance(batch, dict):
        raise BadInputError(f"{path}: a CIFAR-10 batch is a pickled dict, found {type(batch).__name__}")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}


def read_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One batch: images uint8 (N, 3, 32, 32) (rows of 1024 red, 1024 green, 1024 blue bytes) and labels (N,)."""
    path = Path(path)
    batch = _unpickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        found = f"{data.shape} {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise BadInputError(f"{path}: a CIFAR-10 batch's data is uint8 of shape (N, {PIXELS}), found {found}")
    try:
        labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"{path}: a CIFAR-10 batch's labels are a list of ints ({one_line(exc)})") from exc
    if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES))):
        raise BadInputError(f"{path}: expected {len(data)} labels in 0..9, found {labels.shape[0]} in the batch")
    return data.reshape(-1, 3, 32, 32), labels


def _problem(folder: Path) -> str | None:
    missing = [name for name in TRAIN + TEST if not (folder / name).is_file()]
    return f"no {', '.join(missing)}" if missing else None


def _summary(folder: Path) -> str:
    files = [folder / n for n in TRAIN + TEST if (folder / n).is_file()]
    return f"{len(files)} of 6 batches ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB)"


def load_cifar10(
    split: str = "train", data_dir: str | os.PathLike[str] | None = None, download: bool = False
) -> LabelledImages:
    """CIFAR-10's ``split`` ('train': 50,000 images, 'test': 10,000), uint8 (N, 3, 32, 32), labels 0-9."""
    if split not in ("train", "test"):
        raise BadInputError(f"split must be train or test, got {split!r}")
    folder = CIFAR10.locate(data_dir, download)
    parts = [read_batch(folder / name) for name in (TRAIN if split == "train" else TEST)]
    return LabelledImages(
        images=torch.from_numpy(np.concatenate([p[0] for p in parts])),
        labels=torch.from_numpy(np.concatenate([p[1] for p in parts])),
        classes=CLASSES,
        source=folder,
    )


CIFAR10 = DatasetSpec(
    name="cifar10",
    title="CIFAR-10",
    subdirs=("cifar-10-batches-py", "cifar10/cifar-10-batches-py"),
    problem=_problem,
    summary=_summary,
    how="etude data get cifar10 --download",
    expected="60,000 images 32x32x3 in 6 batches (50,000 train, 10,000 test)",
    used_by="pwcca full preset",
    # MD5 of the release's batches, as torchvision 0.28.0's CIFAR10 lists them.
    checksums={
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    },
    downloadable=True,
)
