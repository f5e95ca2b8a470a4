"""scikit-learn's digits as exchangeable sets: class splits, same-class sequences, few-shot episodes.

1,797 images of 8x8 pixels with 17 grey levels (0..16), bundled with scikit-learn (no download).
Following BRUNO's MNIST setting (Korshunova et al., NeurIPS 2018, Sec. 5), training sees only some
classes; the others are "unseen" and only used for evaluation.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = [
    "DIGIT_LEVELS",
    "DigitSplits",
    "IMAGE_DATASETS",
    "knn_predict",
    "load_digit_splits",
    "load_digits_arrays",
    "load_image_splits",
    "load_omniglot_splits",
    "omniglot_ink",
    "nearest_neighbour_predict",
    "sample_episodes",
    "sample_sequences",
]

DIGIT_LEVELS = 17
"""Grey levels of scikit-learn's digits (0..16)."""


@dataclass
class DigitSplits:
    """Images [N, 1, H, W] (float grey levels; 8x8 digits, 28x28 MNIST) and labels [N] (long) of each split."""

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    unseen_x: Tensor
    unseen_y: Tensor
    levels: int = 17
    """Grey levels of the pixels (0 .. levels - 1): 17 for the digits, 256 for MNIST and Fashion-MNIST."""


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (images [1797, 64] float grey levels, labels [1797] int).

    Reads the CSV that scikit-learn bundles without importing scikit-learn (seconds on a loaded
    machine); falls back to ``sklearn.datasets.load_digits`` when the file is not where expected.
    """
    spec = importlib.util.find_spec("sklearn")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in locations:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            data = np.loadtxt(path, delimiter=",")
            return data[:, :64], data[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float64), digits.target.astype(np.int64)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise BadInputError(
            f"val_fraction and test_fraction must be in (0, 1) with sum < 1, got {val_fraction} and {test_fraction}"
        )


def load_digit_splits(
    seed: int = 0,
    train_classes: tuple[int, ...] = (0, 2, 4, 6, 8),
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
) -> DigitSplits:
    """Split the digits: images of ``train_classes`` into train/val/test (per class, shuffled by
    ``seed``); every image of the other classes into ``unseen``."""
    if not train_classes or not set(train_classes) <= set(range(10)):
        raise BadInputError(f"train_classes must be a non-empty subset of 0..9, got {train_classes!r}")
    _check_fractions(val_fraction, test_fraction)
    images, target = load_digits_arrays()
    x = torch.tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(target, dtype=torch.long)
    return _split_by_class(x, y, DIGIT_LEVELS, seed, train_classes, val_fraction, test_fraction)


IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "omniglot")
"""What ``dataset`` may name: the bundled 8x8 digits, or a 28x28 set of `etude.data` (256 grey levels)."""

OMNIGLOT_SIDE = 28
"""Omniglot's 105x105 drawings are area-averaged to 28x28, the official models' observation shape
(``obs_shape ... (seq_len, 28,28,1)`` in ``config_rnn/bn2_omniglot_tp.py`` of github.com/IraKorshunova/bruno)."""


def load_image_splits(
    dataset: str = "digits",
    seed: int = 0,
    train_classes: tuple[int, ...] = (0, 2, 4, 6, 8),
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    *,
    data_dir: str = "",
    per_class: int = 0,
) -> DigitSplits:
    """`load_digit_splits` on ``dataset``: 'digits' ([N, 1, 8, 8], 17 levels) or MNIST / Fashion-MNIST's
    training split ([N, 1, 28, 28], 256 levels, read by `etude.data`; MissingDataError when absent), of
    which ``per_class`` images of each class (seeded; 0 = all) are split the same way; 'omniglot' is split
    by character instead (`load_omniglot_splits`; ``train_classes`` does not apply)."""
    from etude.data.use import check_dataset, load_images

    check_dataset("dataset", dataset, IMAGE_DATASETS)
    if dataset in ("digits", "omniglot") and per_class:
        raise BadInputError(f"per_class applies to mnist and fashion-mnist; {dataset} is used whole")
    if dataset == "digits":
        return load_digit_splits(seed, train_classes, val_fraction, test_fraction)
    if dataset == "omniglot":
        return load_omniglot_splits(seed, val_fraction, test_fraction, data_dir=data_dir)
    check_int("per_class", per_class, 0)
    data = load_images(dataset, "train", data_dir)
    x, y = data.images.to(torch.float32).unsqueeze(1), data.labels.to(torch.long)
    if per_class:
        g = torch.Generator().manual_seed(seed)
        keep = [
            idx[torch.randperm(len(idx), generator=g)[:per_class]]
            for idx in (torch.nonzero(y == c).squeeze(1) for c in range(len(data.classes)))
        ]
        order = torch.cat(keep).sort().values
        x, y = x[order], y[order]
    return _split_by_class(x, y, 256, seed, train_classes, val_fraction, test_fraction)


def omniglot_ink(drawings: Tensor, side: int = OMNIGLOT_SIDE) -> Tensor:
    """Omniglot drawings uint8 [N, 105, 105] (255 = paper) as ink grey levels [N, 1, side, side]: 255 - pixel,
    area-averaged over each output pixel's block of input pixels (`etude.data.images.area_mean`), rounded to 0..255."""
    from etude.data.images import area_mean

    return area_mean(255.0 - drawings.to(torch.float32).unsqueeze(1), side).round()


def load_omniglot_splits(
    seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.2, *, data_dir: str = ""
) -> DigitSplits:
    """Omniglot as BRUNO's splits (28x28, 256 levels, `omniglot_ink`): the characters of images_background are
    split (seeded) into training, validation and test characters, each keeping its 20 drawings (so sequences
    of 20 exist; the official code also holds out whole training classes for validation, ``valid_classes`` in
    its ``utils.load_omniglot``), and every character of images_evaluation is unseen (few-shot episodes)."""
    from etude.data.omniglot import load_omniglot

    _check_fractions(val_fraction, test_fraction)
    background = load_omniglot("background", data_dir or None)
    evaluation = load_omniglot("evaluation", data_dir or None)
    n = len(background.classes)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val, n_test = round(val_fraction * n), round(test_fraction * n)
    if min(n_val, n_test, n - n_val - n_test) < 1:
        raise BadInputError(f"{background.source}: {n} background characters are too few to split three ways")
    x, y = omniglot_ink(background.images), background.labels
    parts = [order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]]
    val, test, train = (torch.isin(y, part) for part in parts)
    return DigitSplits(
        x[train],
        y[train],
        x[val],
        y[val],
        x[test],
        y[test],
        omniglot_ink(evaluation.images),
        evaluation.labels + n,
        256,
    )


def _split_by_class(
    x: Tensor,
    y: Tensor,
    levels: int,
    seed: int,
    train_classes: tuple[int, ...],
    val_fraction: float,
    test_fraction: float,
) -> DigitSplits:
    g = torch.Generator().manual_seed(seed)
    parts: dict[str, list[Tensor]] = {"train": [], "val": [], "test": []}
    for c in sorted(train_classes):
        idx = torch.nonzero(y == c).squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_val, n_test = round(val_fraction * len(idx)), round(test_fraction * len(idx))
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    unseen = torch.nonzero(~torch.isin(y, torch.tensor(sorted(train_classes)))).squeeze(1)
    ix = {k: torch.cat(v) for k, v in parts.items()}
    return DigitSplits(
        x[ix["train"]],
        y[ix["train"]],
        x[ix["val"]],
        y[ix["val"]],
        x[ix["test"]],
        y[ix["test"]],
        x[unseen],
        y[unseen],
        levels,
    )


def _by_class(labels: Tensor, need: int) -> dict[int, Tensor]:
    groups = {int(c): torch.nonzero(labels == c).squeeze(1) for c in labels.unique()}
    small = {c: len(i) for c, i in groups.items() if len(i) < need}
    if small:
        fewest = min(small, key=lambda c: small[c])
        raise BadInputError(
            f"every class needs at least {need} images; {len(small)} of {len(groups)} have fewer "
            f"(class {fewest}: {small[fewest]})"
        )
    return groups


def sample_sequences(
    images: Tensor, labels: Tensor, batch: int, length: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``batch`` sequences of ``length`` distinct images of one class each (class uniform at random).

    Returns sequences [batch, length, *image] and their classes [batch].
    """
    check_int("batch", batch, 1)
    check_int("length", length, 1)
    groups = _by_class(labels, length)
    classes = sorted(groups)
    picks = torch.randint(len(classes), (batch,), generator=generator)
    seqs = []
    for p in picks.tolist():
        idx = groups[classes[p]]
        seqs.append(images[idx[torch.randperm(len(idx), generator=generator)[:length]]])
    return torch.stack(seqs), torch.tensor([classes[p] for p in picks.tolist()])


def sample_episodes(
    images: Tensor, labels: Tensor, ways: int, shots: int, episodes: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Few-shot episodes: ``ways`` classes, ``shots`` support images and one query image per class.

    Returns support [episodes, ways, shots, *image] and query [episodes, ways, *image]; the query at
    position w belongs to class w of its episode.
    """
    groups = _by_class(labels, shots + 1)
    classes = sorted(groups)
    check_int("ways", ways, 2, len(classes))
    check_int("shots", shots, 1)
    support, query = [], []
    for _ in range(episodes):
        chosen = torch.randperm(len(classes), generator=generator)[:ways].tolist()
        s_ep, q_ep = [], []
        for c in chosen:
            idx = groups[classes[c]]
            pick = idx[torch.randperm(len(idx), generator=generator)[: shots + 1]]
            s_ep.append(images[pick[:shots]])
            q_ep.append(images[pick[shots]])
        support.append(torch.stack(s_ep))
        query.append(torch.stack(q_ep))
    return torch.stack(support), torch.stack(query)


def nearest_neighbour_predict(support: Tensor, query: Tensor) -> Tensor:
    """Pixel-space 1-nearest-neighbour baseline: support [E, ways, shots, *image], query [E, q, *image]
    -> predicted class index [E, q] (the class of the support image at the smallest L2 distance)."""
    e, ways, shots = support.shape[:3]
    s = support.reshape(e, ways * shots, -1)
    q = query.reshape(e, query.shape[1], -1)
    dist = torch.cdist(q, s)  # [E, q, ways*shots]
    return dist.argmin(-1) // shots


def knn_predict(train_x: Tensor, train_y: Tensor, x: Tensor, k: int = 5) -> Tensor:
    """k-nearest-neighbour vote in pixel space (L2): train [N, *image], labels [N], x [M, *image] -> [M].

    Ties go to the smallest label.
    """
    check_int("k", k, 1, len(train_x))
    dist = torch.cdist(x.reshape(len(x), -1).double(), train_x.reshape(len(train_x), -1).double())
    nearest = train_y[dist.topk(k, largest=False).indices]  # [M, k]
    votes = torch.nn.functional.one_hot(nearest, int(train_y.max()) + 1).sum(1)
    return votes.argmax(-1)
