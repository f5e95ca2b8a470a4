"""smallNORB from tiny binary-matrix files written byte by byte (the NYU page's header), gzipped or not."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from etude.data import load_smallnorb
from etude.data.smallnorb import read_norb, write_norb
from etude.errors import BadInputError, MissingDataError

TRAIN = "smallnorb-5x46789x9x18x6x2x96x96-training"
TEST = "smallnorb-5x01235x9x18x6x2x96x96-testing"


def matrix(magic: int, array: np.ndarray, dtype: str) -> bytes:
    """Header by hand: magic, ndim, max(ndim, 3) sizes padded with 1, all little-endian int32; then the data."""
    dims = list(array.shape) + [1] * (3 - array.ndim)
    return (
        struct.pack("<ii", magic - (1 << 32) if magic >= 1 << 31 else magic, array.ndim)
        + struct.pack(f"<{len(dims)}i", *dims)
        + array.astype(dtype).tobytes()
    )


def write_norb_folder(folder: Path, n: int = 4, gz: bool = False) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix in (TRAIN, TEST):
        dat = rng.integers(0, 256, (n, 2, 96, 96), dtype=np.uint8)
        cat = np.arange(n, dtype=np.int32) % 5
        info = rng.integers(0, 18, (n, 4)).astype(np.int32)
        for kind, raw in (
            ("dat", matrix(0x1E3D4C55, dat, "u1")),
            ("cat", matrix(0x1E3D4C54, cat, "<i4")),
            ("info", matrix(0x1E3D4C54, info, "<i4")),
        ):
            path = folder / f"{prefix}-{kind}.mat{'.gz' if gz else ''}"
            path.write_bytes(gzip.compress(raw) if gz else raw)
        arrays[prefix] = (dat, cat, info)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_loads_the_stereo_pairs_categories_and_info(tmp_path, gz) -> None:
    arrays = write_norb_folder(tmp_path / "smallnorb", gz=gz)
    train, test = load_smallnorb("train", tmp_path), load_smallnorb("test", tmp_path)
    dat, cat, info = arrays[TEST]
    assert test.images.shape == (4, 2, 96, 96) and np.array_equal(test.images.numpy(), dat)
    assert test.labels.tolist() == [0, 1, 2, 3] and np.array_equal(test.info.numpy(), info)
    assert np.array_equal(train.images.numpy(), arrays[TRAIN][0]) and train.classes[2] == "airplane"


def test_one_dimensional_files_store_three_sizes(tmp_path) -> None:
    raw = (tmp_path / "cat.mat").write_bytes(matrix(0x1E3D4C54, np.array([3, 1, 4], np.int32), "<i4"))
    assert raw == 8 + 12 + 12
    assert read_norb(tmp_path / "cat.mat").tolist() == [3, 1, 4]
    for dtype in ("u1", "<i2", "<i4", "<f4", "<f8"):
        array = np.arange(6).reshape(1, 2, 3, 1).astype(dtype)
        assert np.array_equal(read_norb(write_norb(tmp_path / "x.mat.gz", array)), array)


def test_wrong_magic_truncated_and_mismatched_files_are_named(tmp_path) -> None:
    good = matrix(0x1E3D4C55, np.zeros((2, 3), np.uint8), "u1")
    (tmp_path / "magic.mat").write_bytes(struct.pack("<I", 0x1E3D4C52) + good[4:])
    with pytest.raises(BadInputError, match=r"magic\.mat: wrong magic number 0x1e3d4c52"):
        read_norb(tmp_path / "magic.mat")
    (tmp_path / "short.mat").write_bytes(good[:-1])
    with pytest.raises(BadInputError, match=r"short\.mat: smallNORB file truncated shape \(2, 3\) needs 6 bytes"):
        read_norb(tmp_path / "short.mat")
    write_norb_folder(tmp_path / "smallnorb")
    write_norb(tmp_path / "smallnorb" / f"{TRAIN}-cat.mat", np.zeros(3, np.int32))
    with pytest.raises(BadInputError, match=r"training-cat\.mat: expected 4 categories in 0..4"):
        load_smallnorb("train", tmp_path)
    (tmp_path / "smallnorb" / f"{TEST}-info.mat").unlink()
    with pytest.raises(MissingDataError, match=r"smallnorb: no smallnorb-5x01235x9x18x6x2x96x96-testing-info\.mat"):
        load_smallnorb("test", tmp_path)
