"""Families of distributions for meta-amortized inference, synthesized or built from bundled data.

Wu et al., AAAI 2020 (arXiv:1902.01950): mixtures of Gaussians (arXiv v1's clustering experiment;
its recipe is not published, ours is `MogRecipe`) and the transformation-invariance experiment
(one distribution per rotation or scale, with the official interleaved, sparse and contiguous
splits of the values into seen and unseen: ``src/datasets/mnist.py`` of
github.com/mhw32/meta-inference-public). Images: scikit-learn's bundled `load_digits` (1,797 8x8
digits), no download; or MNIST, Fashion-MNIST (28x28) or smallNORB (left camera, 32x32), read by
`etude.data`.
Shapes: M distributions, P points each, D = 2 (MoG), 64 (digits), 784 (MNIST) or 1024 (smallNORB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = [
    "NORB_SIDE",
    "SPLIT_STYLES",
    "TRANSFORMS",
    "Batch",
    "MogFamily",
    "area_downsample",
    "MogRecipe",
    "load_digit_images",
    "load_family_images",
    "IMAGE_DATASETS",
    "sample_batch",
    "sample_mog_family",
    "split_values",
    "transform_images",
    "transformation_family",
]

SPLIT_STYLES = ("interleaved", "sparse", "contiguous")
TRANSFORMS = ("rotate", "scale")


@dataclass(frozen=True)
class MogRecipe:
    """Our recipe for one dataset of the MoG family: a mixture of two isotropic 2-D Gaussians."""

    n_points: int = 200
    """Points per dataset."""
    mean_range: float = 4.0
    """Both component means are uniform in [-mean_range, mean_range]^2 ..."""
    min_separation: float = 3.0
    """... redrawn until they are at least this far apart (Euclidean)."""
    std_range: tuple[float, float] = (0.4, 1.2)
    """Each component's standard deviation is uniform in this range."""
    weight_range: tuple[float, float] = (0.3, 0.7)
    """The first component's mixing weight is uniform in this range."""


@dataclass
class MogFamily:
    """x [M, P, 2] points, labels [M, P] component ids, means [M, 2, 2], stds [M, 2], weights [M]."""

    x: torch.Tensor
    labels: torch.Tensor
    means: torch.Tensor
    stds: torch.Tensor
    weights: torch.Tensor


def sample_mog_family(
    n_datasets: int, recipe: MogRecipe = MogRecipe(), generator: torch.Generator | None = None
) -> MogFamily:
    """M datasets drawn from `recipe`, each a mixture of two Gaussians; labels give the true clustering."""
    check_int("n_datasets", n_datasets, 1)
    if recipe.n_points < 2 or recipe.min_separation >= 2 * math.sqrt(2) * recipe.mean_range:
        raise BadInputError(f"recipe needs n_points >= 2 and a min_separation the mean box allows, got {recipe}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    r = recipe.mean_range
    means = torch.empty(n_datasets, 2, 2)
    for m in range(n_datasets):
        while True:
            pair = (torch.rand(2, 2, generator=g) * 2 - 1) * r
            if float((pair[0] - pair[1]).norm()) >= recipe.min_separation:
                break
        means[m] = pair
    lo, hi = recipe.std_range
    stds = lo + (hi - lo) * torch.rand(n_datasets, 2, generator=g)
    wlo, whi = recipe.weight_range
    weights = wlo + (whi - wlo) * torch.rand(n_datasets, generator=g)
    labels = (torch.rand(n_datasets, recipe.n_points, generator=g) >= weights[:, None]).long()
    noise = torch.randn(n_datasets, recipe.n_points, 2, generator=g)
    centre = torch.gather(means, 1, labels[..., None].expand(-1, -1, 2))
    x = centre + noise * torch.gather(stds, 1, labels)[..., None]
    return MogFamily(x, labels, means, stds, weights)


def load_digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled digits: images [1797, 8, 8] in [0, 1] and labels [1797]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return torch.tensor(digits.images / 16.0, dtype=torch.float32), torch.tensor(digits.target, dtype=torch.long)


IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist", "smallnorb")
"""What ``dataset`` may name: the bundled 8x8 digits, MNIST / Fashion-MNIST (28x28) or smallNORB (32x32), `etude.data`."""

NORB_SIDE = 32
"""Side smallNORB's 96x96 images are averaged down to: ``image_size`` 32 in the official norb configs
(``scripts/configs/norb/*/meta.json`` of github.com/mhw32/meta-inference-public)."""


def area_downsample(images: torch.Tensor, side: int) -> torch.Tensor:
    """Area averaging of images [N, H, W] to [N, side, side]: out[i, j] = mean of the disjoint
    (H / side) x (W / side) block at (i, j); H and W must be multiples of ``side``."""
    check_int("side", side, 1)
    n, h, w = images.shape
    if h % side or w % side:
        raise BadInputError(f"area averaging to {side}x{side} needs sides that are multiples of {side}, got {h}x{w}")
    from etude.data.images import area_mean

    return area_mean(images[:, None], side)[:, 0]


def load_family_images(
    dataset: str = "digits", count: int = 1797, seed: int = 0, data_dir: str = ""
) -> tuple[torch.Tensor, torch.Tensor]:
    """The items of the transformation family: images [N, H, W] in [0, 1] and labels [N].

    'digits': scikit-learn's 1,797 (8x8, ``count`` ignored); 'mnist' / 'fashion-mnist': a seeded subset of
    ``count`` images of the training split (28x28, grey level / 255), read by `etude.data`; 'smallnorb':
    the left camera image of a seeded subset of ``count`` training pairs, grey level / 255 averaged over
    3x3 blocks to 32x32 (`area_downsample`), labels the 5 categories. Wu et al. resize smallNORB to 32
    (``load_norb`` in ``src/datasets/norb.py`` of github.com/mhw32/meta-inference-public: torchvision
    ``Resize(32)``, antialiased bilinear, with both cameras' images as separate items); we take one
    camera and a box filter, exact at the integer factor 3.
    """
    from etude.data.images import LabelledImages
    from etude.data.smallnorb import load_smallnorb
    from etude.data.use import check_dataset, load_images, take

    check_dataset("dataset", dataset, IMAGE_DATASETS)
    if dataset == "digits":
        return load_digit_images()
    if dataset == "smallnorb":
        norb = load_smallnorb("train", data_dir or None)
        items = LabelledImages(norb.images[:, 0], norb.labels, norb.classes, norb.source)  # the left camera
    else:
        items = load_images(dataset, "train", data_dir)
    images, labels = take(items, count, seed)
    images = images.to(torch.float32) / 255.0
    if dataset == "smallnorb":
        images = area_downsample(images, NORB_SIDE)
    return images, labels.to(torch.long)


def transform_images(images: torch.Tensor, kind: str, value: float) -> torch.Tensor:
    """Rotate by `value` degrees, or scale by factor `value`, about the centre (bilinear, zeros outside): [N, H, W].

    Scale follows the official dataset code (``scale_transform`` in ``src/datasets/mnist.py`` of
    github.com/mhw32/meta-inference-public: a centred crop of side ``value * W`` resized back to W):
    output pixel p shows input point c + value (p - c), c the centre, so a factor above 1 shows the
    digit *smaller* (ink mass about 1 / value^2 of the original) and a factor below 1 enlarges it.
    """
    if kind not in TRANSFORMS:
        raise BadInputError(f"kind must be one of {TRANSFORMS}, got {kind!r}")
    if not isinstance(images, torch.Tensor) or images.dim() != 3:
        raise BadInputError(f"images must be a tensor [N, H, W], got {getattr(images, 'shape', type(images).__name__)}")
    if kind == "scale" and not value > 0:
        raise BadInputError(f"a scale factor must be positive, got {value!r}")
    if kind == "rotate":
        a = math.radians(value)
        theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
    else:
        theta = torch.tensor([[float(value), 0.0, 0.0], [0.0, float(value), 0.0]])  # output p reads input s p
    n, h, w = images.shape
    grid = torch.nn.functional.affine_grid(theta.expand(n, 2, 3).to(images.dtype), [n, 1, h, w], align_corners=False)
    out = torch.nn.functional.grid_sample(
        images[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out[:, 0]


def split_values(values: list[float], style: str) -> tuple[list[float], list[float]]:
    """(seen, unseen) transformation values in the paper's split styles.

    As the official ``src/datasets/mnist.py`` (github.com/mhw32/meta-inference-public) splits its
    rotations and scales: interleaved ('standard'): values 0, 2, 4, ... are seen; sparse: values
    1, 5, 9, ... are seen (few, spread out); contiguous ('disjoint'): the first len // 2 + 1 values are
    seen, the rest unseen (extrapolation).
    """
    if style not in SPLIT_STYLES:
        raise BadInputError(f"style must be one of {SPLIT_STYLES}, got {style!r}")
    if len(values) < 4:
        raise BadInputError(f"need at least 4 transformation values to split, got {len(values)}")
    idx = range(len(values))
    if style == "interleaved":
        seen = [i for i in idx if i % 2 == 0]
    elif style == "sparse":
        seen = [i for i in idx if i % 4 == 1]
    else:
        seen = list(range(len(values) // 2 + 1))
    return [values[i] for i in seen], [values[i] for i in idx if i not in seen]


def transformation_family(images: torch.Tensor, kind: str, values: list[float]) -> torch.Tensor:
    """One distribution per value: the images transformed by it, flattened: [M, N, H*W]."""
    return torch.stack([transform_images(images, kind, v).flatten(1) for v in values])


@dataclass
class Batch:
    """index [B] distributions, x [B, N, D], context [B, C, D] disjoint from x, context_mask [B, C]."""

    index: torch.Tensor
    x: torch.Tensor
    context: torch.Tensor
    context_mask: torch.Tensor


def sample_batch(
    data: torch.Tensor,
    n_sets: int,
    n_x: int,
    n_context: int,
    generator: torch.Generator,
    min_context: int | None = None,
) -> Batch:
    """B distributions of `data` [M, P, D] (with replacement), each with n_x points and a disjoint context.

    Context sizes are uniform in [min_context, n_context] (all n_context when None); the padded
    tail of each context set is masked out.
    """
    m, p, _ = data.shape
    if n_x + n_context > p:
        raise BadInputError(f"n_x + n_context must be at most the {p} points per distribution, got {n_x} + {n_context}")
    low = n_context if min_context is None else min_context
    if not 1 <= low <= n_context:
        raise BadInputError(f"min_context must be in [1, {n_context}], got {min_context!r}")
    index = torch.randint(m, (n_sets,), generator=generator)
    order = torch.argsort(torch.rand(n_sets, p, generator=generator), dim=1)[:, : n_x + n_context]
    rows = data[index[:, None], order]  # [B, n_x + n_context, D]
    sizes = torch.randint(low, n_context + 1, (n_sets,), generator=generator)
    mask = torch.arange(n_context)[None] < sizes[:, None]
    return Batch(index, rows[:, :n_x], rows[:, n_x:], mask)
