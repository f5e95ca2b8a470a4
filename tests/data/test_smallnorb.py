"""smallNORB from tiny binary-matrix files written byte by byte (the NYU page's header), gzipped or not."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from tests.data.data_files import NORB_TEST, NORB_TRAIN, norb_matrix, write_norb_folder

from etude.data import load_smallnorb
from etude.data.smallnorb import read_norb, write_norb
from etude.errors import BadInputError, MissingDataError


@pytest.mark.parametrize("gz", [False, True])
def test_loads_the_stereo_pairs_categories_and_info(tmp_path, gz) -> None:
    arrays = write_norb_folder(tmp_path / "smallnorb", gz=gz)
    train, test = load_smallnorb("train", tmp_path), load_smallnorb("test", tmp_path)
    dat, cat, info = arrays[NORB_TEST]
    assert test.images.shape == (4, 2, 96, 96) and np.array_equal(test.images.numpy(), dat)
    assert test.labels.tolist() == [0, 1, 2, 3] and np.array_equal(test.info.numpy(), info)
    assert np.array_equal(train.images.numpy(), arrays[NORB_TRAIN][0]) and train.classes[2] == "airplane"


def test_one_dimensional_files_store_three_sizes(tmp_path) -> None:
    raw = (tmp_path / "cat.mat").write_bytes(norb_matrix(0x1E3D4C54, np.array([3, 1, 4], np.int32), "<i4"))
    assert raw == 8 + 12 + 12
    assert read_norb(tmp_path / "cat.mat").tolist() == [3, 1, 4]
    for dtype in ("u1", "<i2", "<i4", "<f4", "<f8"):
        array = np.arange(6).reshape(1, 2, 3, 1).astype(dtype)
        assert np.array_equal(read_norb(write_norb(tmp_path / "x.mat.gz", array)), array)


def test_wrong_magic_truncated_and_mismatched_files_are_named(tmp_path) -> None:
    good = norb_matrix(0x1E3D4C55, np.zeros((2, 3), np.uint8), "u1")
    (tmp_path / "magic.mat").write_bytes(struct.pack("<I", 0x1E3D4C52) + good[4:])
    with pytest.raises(BadInputError, match=r"magic\.mat: wrong magic number 0x1e3d4c52"):
        read_norb(tmp_path / "magic.mat")
    (tmp_path / "short.mat").write_bytes(good[:-1])
    with pytest.raises(BadInputError, match=r"short\.mat: smallNORB file truncated shape \(2, 3\) needs 6 bytes"):
        read_norb(tmp_path / "short.mat")
    write_norb_folder(tmp_path / "smallnorb")
    write_norb(tmp_path / "smallnorb" / f"{NORB_TRAIN}-cat.mat", np.zeros(3, np.int32))
    with pytest.raises(BadInputError, match=r"training-cat\.mat: expected 4 categories in 0..4"):
        load_smallnorb("train", tmp_path)
    (tmp_path / "smallnorb" / f"{NORB_TEST}-info.mat").unlink()
    with pytest.raises(MissingDataError, match=r"smallnorb: no smallnorb-5x01235x9x18x6x2x96x96-testing-info\.mat"):
        load_smallnorb("test", tmp_path)


def block_mean(image: np.ndarray, k: int) -> np.ndarray:
    """Brute force: the mean of every disjoint k x k block, one loop per output pixel."""
    side = image.shape[0] // k
    out = np.empty((side, side))
    for i in range(side):
        for j in range(side):
            out[i, j] = image[i * k : (i + 1) * k, j * k : (j + 1) * k].astype(np.float64).mean()
    return out


def test_metavae_items_are_left_images_averaged_to_32x32_by_seed(tmp_path) -> None:
    from etude.meta.datasets import NORB_SIDE, area_downsample, load_family_images

    dat, cat, _ = write_norb_folder(tmp_path / "smallnorb", n=12)[NORB_TRAIN]
    images, labels = load_family_images("smallnorb", 7, seed=3, data_dir=str(tmp_path))
    assert NORB_SIDE == 32 and images.shape == (7, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.long and 0.0 <= float(images.min()) <= float(images.max()) <= 1.0
    left = np.stack([block_mean(d[0], 3) / 255 for d in dat])  # [12, 32, 32]
    right = np.stack([block_mean(d[1], 3) / 255 for d in dat])
    picked = []
    for image, label in zip(images.double().numpy(), labels.tolist()):
        match = [i for i in range(len(dat)) if np.allclose(image, left[i], atol=1e-6)]
        assert len(match) == 1 and cat[match[0]] == label  # one left image, with its category
        assert not any(np.allclose(image, r, atol=1e-3) for r in right)  # never the right camera
        picked.append(match[0])
    assert len(set(picked)) == 7  # a subset: no pair twice
    again, _ = load_family_images("smallnorb", 7, seed=3, data_dir=str(tmp_path))
    other, _ = load_family_images("smallnorb", 7, seed=4, data_dir=str(tmp_path))
    assert torch.equal(images, again) and not torch.equal(images, other)
    every, every_labels = load_family_images("smallnorb", 100, seed=0, data_dir=str(tmp_path))  # more than there are
    assert every.shape == (12, 32, 32) and every_labels.tolist() == cat.tolist()
    assert np.allclose(every.double().numpy(), left, atol=1e-6)
    with pytest.raises(BadInputError, match="multiples of 32, got 90x96"):
        area_downsample(torch.zeros(1, 90, 96), 32)


def test_metavae_on_a_missing_smallnorb_is_one_missing_data_error(tmp_path) -> None:
    from etude.meta.datasets import load_family_images

    with pytest.raises(MissingDataError) as info:
        load_family_images("smallnorb", 5, seed=0, data_dir=str(tmp_path / "empty"))
    assert len(str(info.value).splitlines()) == 1 and "smallnorb" in str(info.value)
