"""The IDX format of MNIST and Fashion-MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/), gzipped or not.

A file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions d), d big-endian
uint32 sizes, then the array in C order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from etude.errors import BadInputError, one_line

__all__ = ["IDX_TYPES", "idx_shape", "read_idx", "write_idx"]

IDX_TYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
"""Type code (third byte of the magic number) -> NumPy dtype."""


def _open(path: Path) -> gzip.GzipFile | BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _header(path: Path, head: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    if len(head) < 4:
        raise BadInputError(f"{path}: truncated IDX file: {len(head)} bytes, shorter than its 4-byte magic number")
    if head[:2] != b"\0\0" or head[2] not in IDX_TYPES or head[3] == 0:
        raise BadInputError(
            f"{path}: wrong magic number 0x{head[:4].hex()} for an IDX file "
            "(two zero bytes, a type code 08/09/0b/0c/0d/0e, the number of dimensions)"
        )
    ndim = head[3]
    offset = 4 + 4 * ndim
    if len(head) < offset:
        raise BadInputError(f"{path}: truncated IDX file: its header needs {offset} bytes, found {len(head)}")
    dims = struct.unpack(f">{ndim}I", head[4:offset])
    return np.dtype(IDX_TYPES[head[2]]), tuple(int(d) for d in dims), offset


def _read(path: Path, size: int | None = None) -> bytes:
    try:
        with _open(path) as f:
            return f.read() if size is None else f.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        kind = "gzip file" if path.suffix == ".gz" else "file"
        raise BadInputError(f"{path}: unreadable IDX {kind} ({one_line(exc)})") from exc


def idx_shape(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """The array shape an IDX file's header declares (reads the header only)."""
    path = Path(path)
    return _header(path, _read(path, 4 + 4 * 255))[1]


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array an IDX file holds (native byte order); BadInputError naming the file if it is not one."""
    path = Path(path)
    raw = _read(path)
    dtype, dims, offset = _header(path, raw[: 4 + 4 * 255])
    need = math.prod(dims) * dtype.itemsize
    if len(raw) - offset != need:
        what = "truncated IDX file" if len(raw) - offset < need else "IDX file longer than its header says"
        raise BadInputError(f"{path}: {what}: shape {dims} needs {need} data bytes, found {len(raw) - offset}")
    array = np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=offset).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzipped when the name ends in .gz)."""
    path = Path(path)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in IDX_TYPES.items()}
    code = codes.get(np.dtype(array.dtype).newbyteorder("=").str)
    if code is None:
        raise BadInputError(f"IDX holds uint8, int8, int16, int32, float32 or float64, got {array.dtype}")
    data = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += np.ascontiguousarray(array, dtype=np.dtype(IDX_TYPES[code])).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
