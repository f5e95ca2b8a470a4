"""Dataset families: the MoG recipe, digit transformations and their split styles, minibatches with masks."""

import numpy as np
import pytest
import torch

from etude.errors import BadInputError
from etude.meta import (
    MogRecipe,
    load_digit_images,
    sample_batch,
    sample_mog_family,
    split_values,
    transform_images,
    transformation_family,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mog_family_follows_its_recipe(seed):
    recipe = MogRecipe(n_points=500)
    fam = sample_mog_family(30, recipe, torch.Generator().manual_seed(seed))
    assert fam.x.shape == (30, 500, 2) and fam.labels.shape == (30, 500)
    assert bool(((fam.means[:, 0] - fam.means[:, 1]).norm(dim=-1) >= recipe.min_separation).all())
    assert bool((fam.means.abs() <= recipe.mean_range).all())
    assert bool(((fam.stds >= 0.4) & (fam.stds <= 1.2)).all())
    assert bool(((fam.weights >= 0.3) & (fam.weights <= 0.7)).all())
    # points of component k scatter around mean k with its std (5 std is far in 2-D)
    centre = torch.gather(fam.means, 1, fam.labels[..., None].expand(-1, -1, 2))
    spread = torch.gather(fam.stds, 1, fam.labels)
    assert bool(((fam.x - centre).norm(dim=-1) < 5 * spread).all())
    share = (fam.labels == 0).double().mean(1)
    assert float((share - fam.weights).abs().mean()) < 0.05
    again = sample_mog_family(30, recipe, torch.Generator().manual_seed(seed))
    assert torch.equal(fam.x, again.x)


def test_mog_family_rejects_impossible_recipes():
    with pytest.raises(BadInputError, match="n_datasets"):
        sample_mog_family(0)
    with pytest.raises(BadInputError, match="min_separation"):
        sample_mog_family(2, MogRecipe(mean_range=1.0, min_separation=3.0))


def test_rotations_and_scales_are_exact_on_the_pixel_grid():
    img = torch.arange(2 * 64.0).reshape(2, 8, 8)
    assert torch.allclose(transform_images(img, "rotate", 0.0), img, atol=1e-4)
    assert torch.allclose(transform_images(img, "rotate", 90.0), torch.rot90(img, 1, (1, 2)), atol=1e-3)
    assert torch.allclose(transform_images(img, "rotate", 180.0), torch.rot90(img, 2, (1, 2)), atol=1e-3)
    assert torch.allclose(transform_images(img, "scale", 1.0), img, atol=1e-4)
    small = transform_images(torch.ones(1, 8, 8), "scale", 2.0)  # a factor above 1 shrinks: a zero border
    assert float(small[0, 0].abs().sum()) == 0.0 and float(small[0, 3:5, 3:5].min()) == pytest.approx(1.0)
    with pytest.raises(BadInputError, match="kind"):
        transform_images(img, "shear", 1.0)
    with pytest.raises(BadInputError, match="positive"):
        transform_images(img, "scale", 0.0)


@pytest.mark.parametrize("kind,value", [("scale", 0.5), ("scale", 0.8), ("scale", 1.3), ("scale", 1.9), ("rotate", 37.0)])
def test_transforms_equal_scipy_affine_transform_about_the_centre(kind, value):
    """Independent computation: scipy.ndimage.affine_transform maps output index o to input index
    c + A (o - c) (c = (H - 1) / 2, the pixel centre), bilinear, zeros outside ('grid-constant')."""
    from scipy.ndimage import affine_transform

    images, _ = load_digit_images()
    x = images[:20].double()
    if kind == "scale":
        a = np.diag([value, value])
    else:  # rows, columns: image y points down, so a positive angle turns counter-clockwise on screen
        t = np.radians(value)
        a = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    c = np.full(2, 3.5)
    expected = np.stack([affine_transform(im.numpy(), a, offset=c - a @ c, order=1, mode="grid-constant") for im in x])
    assert np.allclose(transform_images(x, kind, value).numpy(), expected, atol=1e-6)


def test_scale_above_one_shrinks_the_digit_as_the_official_crop_and_resize_does():
    """Ink mass: a factor s >= 1 keeps the whole digit and shows it at 1 / s its size, so its mass is about
    mass / s^2 (at 1.9: about 5.4 of 19.5); the official crop-and-resize (PIL) agrees within 10%."""
    images, _ = load_digit_images()
    mass = float(images.sum((1, 2)).mean())
    assert mass == pytest.approx(19.54, abs=0.01)
    for s in (1.0, 1.3, 1.6, 1.9):
        shown = float(transform_images(images, "scale", s).sum((1, 2)).mean())
        assert shown == pytest.approx(mass / s**2, rel=0.06), s
    assert float(transform_images(images, "scale", 0.5).sum((1, 2)).mean()) > mass  # below 1: enlarged (cropped)
    image_module = pytest.importorskip("PIL.Image")

    def official(img: np.ndarray, s: float) -> np.ndarray:  # crop a centred box of side s W, resize back to W
        w = img.shape[0] * s
        i = (img.shape[0] - w) // 2
        pil = image_module.fromarray(img.astype(np.float32), mode="F")
        return np.asarray(pil.crop((i, i, i + w, i + w)).resize(img.shape, image_module.BILINEAR))

    for s in (0.5, 1.3, 1.9):
        theirs = np.mean([official(im.numpy(), s).sum() for im in images[:300]])
        ours = float(transform_images(images[:300], "scale", s).sum((1, 2)).mean())
        assert ours == pytest.approx(theirs, rel=0.1), s


def test_digit_family_has_one_distribution_per_value():
    images, labels = load_digit_images()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    fam = transformation_family(images[:10], "rotate", [0.0, 45.0, 90.0])
    assert fam.shape == (3, 10, 64)
    assert torch.allclose(fam[0], images[:10].flatten(1), atol=1e-4)


@pytest.mark.parametrize("style", ["interleaved", "sparse", "contiguous"])
def test_split_styles_partition_the_values(style):
    values = list(range(12))
    seen, unseen = split_values(values, style)
    assert sorted(seen + unseen) == values and not set(seen) & set(unseen)
    expected = {"interleaved": [0, 2, 4, 6, 8, 10], "sparse": [1, 5, 9], "contiguous": [0, 1, 2, 3, 4, 5, 6]}
    assert seen == expected[style]
    with pytest.raises(BadInputError, match="style"):
        split_values(values, "random")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batches_have_disjoint_contexts_and_variable_masked_sizes(seed):
    data = torch.arange(5 * 30, dtype=torch.float64).reshape(5, 30, 1)  # every point is unique
    g = torch.Generator().manual_seed(seed)
    batch = sample_batch(data, 8, 7, 10, g, min_context=3)
    assert batch.x.shape == (8, 7, 1) and batch.context.shape == (8, 10, 1) and batch.context_mask.shape == (8, 10)
    sizes = batch.context_mask.sum(1)
    assert bool(((sizes >= 3) & (sizes <= 10)).all())
    assert bool((batch.context_mask == (torch.arange(10)[None] < sizes[:, None])).all())  # a prefix of each set
    for b in range(8):
        i = int(batch.index[b])
        pts = set(batch.x[b, :, 0].tolist()) | set(batch.context[b, :, 0].tolist())
        assert len(pts) == 17 and all(30 * i <= v < 30 * (i + 1) for v in pts)  # disjoint, all from distribution i
    with pytest.raises(BadInputError, match="at most"):
        sample_batch(data, 2, 25, 10, g)
    with pytest.raises(BadInputError, match="min_context"):
        sample_batch(data, 2, 5, 10, g, min_context=0)
