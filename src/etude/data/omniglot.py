"""Omniglot (Lake et al. 2015): 1,623 handwritten characters of 50 alphabets, 20 drawings each, as 105x105
PNGs in ``images_background/<alphabet>/<character>/*.png`` (964 characters, the training alphabets) and
``images_evaluation/...`` (659 characters, the few-shot test alphabets).

Read here: torchvision's ``Omniglot`` accepts a folder only beside the release's zip files with their MD5;
it remains the path for ``download=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from etude.data.images import LabelledImages
from etude.data.spec import DatasetSpec
from etude.errors import BadInputError, one_line

__all__ = ["OMNIGLOT", "SPLITS", "load_omniglot"]

SPLITS = {"background": "images_background", "evaluation": "images_evaluation"}


def _problem(folder: Path) -> str | None:
    missing = [name for name in SPLITS.values() if not (folder / name).is_dir()]
    if len(missing) == len(SPLITS):
        return "holds neither images_background nor images_evaluation"
    return f"no {missing[0]} folder" if missing else None


def _summary(folder: Path) -> str:
    counts = {split: sum(1 for _ in (folder / name).glob("*/*/*.png")) for split, name in SPLITS.items()}
    return ", ".join(f"{n:,} {split} images" for split, n in counts.items())


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.array(image.convert("L"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise BadInputError(f"{path}: unreadable PNG ({one_line(exc)})") from exc


def load_omniglot(
    split: str = "background", data_dir: str | os.PathLike[str] | None = None, download: bool = False
) -> LabelledImages:
    """One split's drawings, uint8 (N, 105, 105) (255 = paper, 0 = ink), labelled by character.

    ``classes[k]`` is ``"<alphabet>/<character>"``; characters are sorted, so the labels are the same on
    every machine.
    """
    if split not in SPLITS:
        raise BadInputError(f"split must be background or evaluation, got {split!r}")
    root = OMNIGLOT.locate(data_dir, download) / SPLITS[split]
    characters = sorted(p for p in root.glob("*/*") if p.is_dir())
    if not characters:
        raise BadInputError(f"{root}: no <alphabet>/<character> folders")
    images, labels = [], []
    for label, character in enumerate(characters):
        for png in sorted(character.glob("*.png")):
            images.append(_read_png(png))
            labels.append(label)
    if not images:
        raise BadInputError(f"{root}: no PNG drawings in its character folders")
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise BadInputError(f"{root}: drawings of different sizes {sorted(shapes)}")
    return LabelledImages(
        images=torch.from_numpy(np.stack(images)),
        labels=torch.tensor(labels, dtype=torch.int64),
        classes=tuple(f"{c.parent.name}/{c.name}" for c in characters),
        source=root,
    )


OMNIGLOT = DatasetSpec(
    name="omniglot",
    title="Omniglot",
    subdirs=("omniglot-py", "omniglot"),
    problem=_problem,
    summary=_summary,
    how="etude data get omniglot --download",
    expected="32,460 images 105x105: 19,280 background (964 characters), 13,180 evaluation (659 characters)",
    used_by="no study yet (bruno few-shot on background/evaluation planned, issue 26)",
    # MD5 of the release's zip files, as torchvision 0.28.0's Omniglot lists them.
    checksums={
        "images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
        "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811",
    },
    downloadable=True,
)
