"""The IDX reader against files spelled out byte by byte (LeCun's format), gzipped or not, and broken ones."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from etude.data.idx import idx_shape, read_idx, write_idx
from etude.errors import BadInputError


def test_reads_a_file_written_byte_by_byte(tmp_path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = b"\x00\x00\x08\x03" + struct.pack(">III", 2, 3, 4) + images.tobytes()
    (tmp_path / "a").write_bytes(raw)
    (tmp_path / "a.gz").write_bytes(gzip.compress(raw))
    for name in ("a", "a.gz"):
        got = read_idx(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
        assert np.array_equal(got, images)
        assert idx_shape(tmp_path / name) == (2, 3, 4)


def test_multibyte_types_are_big_endian(tmp_path) -> None:
    values = [1, -2, 70000]
    raw = b"\x00\x00\x0c\x01" + struct.pack(">I", 3) + struct.pack(">3i", *values)
    (tmp_path / "ints").write_bytes(raw)
    got = read_idx(tmp_path / "ints")
    assert got.tolist() == values and got.dtype == np.int32
    floats = np.array([[0.5, -1.25]], dtype=np.float64)
    write_idx(tmp_path / "f.gz", floats)
    assert gzip.decompress((tmp_path / "f.gz").read_bytes())[:4] == b"\x00\x00\x0e\x02"
    assert np.array_equal(read_idx(tmp_path / "f.gz"), floats)


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
def test_every_type_round_trips(tmp_path, dtype) -> None:
    array = (np.arange(12).reshape(3, 4) - 5).astype(dtype)
    assert np.array_equal(read_idx(write_idx(tmp_path / "x", array)), array)


def test_truncated_wrong_magic_and_broken_gzip_name_the_file(tmp_path) -> None:
    good = b"\x00\x00\x08\x01" + struct.pack(">I", 10) + bytes(range(10))
    cases = {
        "short": (good[:-3], "truncated IDX file: shape (10,) needs 10 data bytes, found 7"),
        "tiny": (good[:2], "truncated IDX file: 2 bytes"),
        "header": (good[:6], "truncated IDX file: its header needs 8 bytes"),
        "magic": (b"\x08\x03\x00\x00" + good[4:], "wrong magic number 0x08030000"),
        "type": (b"\x00\x00\x07\x01" + good[4:], "wrong magic number 0x00000701"),
        "long": (good + b"\x00", "IDX file longer than its header says"),
    }
    for name, (raw, message) in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(BadInputError) as info:
            read_idx(tmp_path / name)
        assert str(tmp_path / name) in str(info.value) and message in str(info.value), name
        assert "\n" not in str(info.value)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(good)[:-12])
    with pytest.raises(BadInputError, match=r"cut\.gz: unreadable IDX gzip file"):
        read_idx(tmp_path / "cut.gz")
