"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017, arXiv:1708.07747): 28x28 grey digits and
clothes, 60,000 training and 10,000 test images in four IDX files each (gzipped or not).

Read here from the IDX files themselves: torchvision's ``MNIST`` wants its own ``MNIST/raw`` layout and
would not read the Debian package's folder; it remains the path for ``download=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from etude.data.idx import idx_shape, read_idx
from etude.data.images import LabelledImages
from etude.data.spec import DatasetSpec
from etude.errors import BadInputError

__all__ = ["FASHION_MNIST", "MNIST", "SPLIT_FILES", "load_fashion_mnist", "load_mnist", "read_idx_pair"]

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
"""Split -> (images, labels) file names, without the optional .gz."""

DIGITS = tuple(str(d) for d in range(10))
CLOTHES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
"""Fashion-MNIST's ten classes, in label order (the dataset's README)."""


def _file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _problem(folder: Path) -> str | None:
    missing = [stem for pair in SPLIT_FILES.values() for stem in pair if _file(folder, stem) is None]
    return f"no {', '.join(missing)} (or .gz)" if missing else None


def _summary(folder: Path) -> str:
    files = [f for pair in SPLIT_FILES.values() for stem in pair if (f := _file(folder, stem)) is not None]
    shapes = [idx_shape(f) for f in files if "images" in f.name]
    count = sum(s[0] for s in shapes)
    size = "x".join(str(d) for d in shapes[0][1:]) if shapes else "?"
    return f"{count:,} images {size} ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB)"


def read_idx_pair(images_path: Path, labels_path: Path, classes: tuple[str, ...]) -> LabelledImages:
    """An images IDX file (N, H, W) uint8 and its labels IDX file (N,) in ``range(len(classes))``."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise BadInputError(f"{images_path}: expected (N, H, W) uint8 images, found {images.shape} {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8 or len(labels) != len(images):
        raise BadInputError(
            f"{labels_path}: expected {len(images)} uint8 labels (one per image of {images_path.name}), "
            f"found {labels.shape} {labels.dtype}"
        )
    if len(labels) and int(labels.max()) >= len(classes):
        raise BadInputError(f"{labels_path}: label {int(labels.max())} outside 0..{len(classes) - 1}")
    return LabelledImages(
        images=torch.from_numpy(np.array(images)),
        labels=torch.from_numpy(labels.astype(np.int64)),
        classes=classes,
        source=images_path.parent,
    )


def _load(
    spec: DatasetSpec,
    classes: tuple[str, ...],
    split: str,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
) -> LabelledImages:
    if split not in SPLIT_FILES:
        raise BadInputError(f"split must be one of {', '.join(SPLIT_FILES)}, got {split!r}")
    folder = spec.locate(data_dir, download)
    image_stem, label_stem = SPLIT_FILES[split]
    images, labels = _file(folder, image_stem), _file(folder, label_stem)
    assert images is not None and labels is not None  # locate() checked
    return read_idx_pair(images, labels, classes)


def load_mnist(
    split: str = "train", data_dir: str | os.PathLike[str] | None = None, download: bool = False
) -> LabelledImages:
    """MNIST's ``split`` ('train': 60,000 images, 'test': 10,000), uint8 (N, 28, 28) and labels 0-9."""
    return _load(MNIST, DIGITS, split, data_dir, download)


def load_fashion_mnist(
    split: str = "train", data_dir: str | os.PathLike[str] | None = None, download: bool = False
) -> LabelledImages:
    """Fashion-MNIST's ``split`` ('train': 60,000, 'test': 10,000), uint8 (N, 28, 28), labels 0-9 (CLOTHES)."""
    return _load(FASHION_MNIST, CLOTHES, split, data_dir, download)


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST",
    subdirs=("mnist", "MNIST/raw"),
    problem=_problem,
    summary=_summary,
    how="etude data get mnist --download",
    expected="70,000 images 28x28 (60,000 train, 10,000 test)",
    used_by="bruno and metavae full presets",
    # The published MD5 of the gzipped files (as torchvision 0.28.0's MNIST.resources lists them).
    checksums={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    downloadable=True,
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    subdirs=("fashion-mnist", "FashionMNIST/raw"),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    problem=_problem,
    summary=_summary,
    how="apt-get install dataset-fashion-mnist (or: etude data get fashion-mnist --download)",
    expected="70,000 images 28x28 (60,000 train, 10,000 test)",
    used_by="bruno, pwcca and metavae with --set dataset=fashion-mnist",
    # The MD5 of the gzipped files published in Fashion-MNIST's README.md. Debian's package holds
    # the same images re-gzipped, so its .gz files have other MD5 sums; their contents are checked on load.
    checksums={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    downloadable=True,
)
