"""smallNORB (LeCun, Huang and Bottou 2004): stereo pairs of 96x96 grey photographs of 50 toys in 5 categories
under 18 azimuths, 9 elevations and 6 lightings; 24,300 pairs for training and 24,300 for testing.

Its files are in the "binary matrix" format of https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/: a
little-endian int32 magic number naming the element type, an int32 number of dimensions d, max(d, 3)
int32 sizes (the unused ones are 1), then the array in C order, little-endian. ``-dat`` holds the images
(N, 2, 96, 96) uint8, ``-cat`` the categories (N,) int32, ``-info`` (N, 4) int32: instance, elevation,
azimuth, lighting.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from etude.data.spec import DatasetSpec
from etude.errors import BadInputError, one_line

__all__ = ["CATEGORIES", "MAGIC", "SMALLNORB", "NorbSet", "load_smallnorb", "read_norb", "write_norb"]

MAGIC: dict[int, str] = {0x1E3D4C51: "<f4", 0x1E3D4C53: "<f8", 0x1E3D4C54: "<i4", 0x1E3D4C55: "u1", 0x1E3D4C56: "<i2"}
"""Magic number -> element type (single, double, int, byte, short)."""

CATEGORIES = ("animal", "human", "airplane", "truck", "car")
PREFIX = {"train": "smallnorb-5x46789x9x18x6x2x96x96-training", "test": "smallnorb-5x01235x9x18x6x2x96x96-testing"}
KINDS = ("dat", "cat", "info")


def _read(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise BadInputError(f"{path}: unreadable smallNORB file ({one_line(exc)})") from exc


def _header(path: Path, raw: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    if len(raw) < 8:
        raise BadInputError(f"{path}: truncated smallNORB file: {len(raw)} bytes, shorter than its 8-byte header")
    magic, ndim = struct.unpack("<iI", raw[:8])
    magic &= 0xFFFFFFFF
    if magic not in MAGIC:
        raise BadInputError(f"{path}: wrong magic number 0x{magic:08x} for a smallNORB binary matrix")
    if not 1 <= ndim <= 16:
        raise BadInputError(f"{path}: a smallNORB matrix has 1-16 dimensions, the header says {ndim}")
    stored = max(ndim, 3)
    offset = 8 + 4 * stored
    if len(raw) < offset:
        raise BadInputError(f"{path}: truncated smallNORB file: its header needs {offset} bytes, found {len(raw)}")
    dims = struct.unpack(f"<{stored}I", raw[8:offset])[:ndim]
    return np.dtype(MAGIC[magic]), tuple(int(d) for d in dims), offset


def read_norb(path: str | os.PathLike[str]) -> np.ndarray:
    """The array a smallNORB binary matrix file (or its .gz) holds; BadInputError naming the file if not one."""
    path = Path(path)
    raw = _read(path)
    dtype, dims, offset = _header(path, raw)
    need = math.prod(dims) * dtype.itemsize
    if len(raw) - offset != need:
        what = "truncated" if len(raw) - offset < need else "longer than its header says:"
        raise BadInputError(f"{path}: smallNORB file {what} shape {dims} needs {need} bytes, found {len(raw) - offset}")
    return (
        np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=offset)
        .reshape(dims)
        .astype(dtype.newbyteorder("="))
    )


def write_norb(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as a smallNORB binary matrix (gzipped when the name ends in .gz)."""
    path = Path(path)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in MAGIC.items()}
    code = codes.get(np.dtype(array.dtype).newbyteorder("=").str)
    if code is None:
        raise BadInputError(f"a smallNORB matrix holds float32, float64, int32, uint8 or int16, got {array.dtype}")
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    data = struct.pack(f"<II{len(dims)}I", code, array.ndim, *dims)
    data += np.ascontiguousarray(array, dtype=np.dtype(MAGIC[code])).tobytes()
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def _file(folder: Path, split: str, kind: str) -> Path | None:
    for suffix in (".mat", ".mat.gz"):
        if (folder / f"{PREFIX[split]}-{kind}{suffix}").is_file():
            return folder / f"{PREFIX[split]}-{kind}{suffix}"
    return None


def _problem(folder: Path) -> str | None:
    missing = [f"{PREFIX[s]}-{k}.mat" for s in PREFIX for k in KINDS if _file(folder, s, k) is None]
    return f"no {', '.join(missing)} (or .gz)" if missing else None


def _summary(folder: Path) -> str:
    files = [f for s in PREFIX for k in KINDS if (f := _file(folder, s, k)) is not None]
    return f"{len(files)} of 6 files ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB)"


@dataclass(frozen=True)
class NorbSet:
    """``images`` uint8 (N, 2, 96, 96) (left, right camera), ``labels`` int64 (N,) categories, ``info`` (N, 4)."""

    images: torch.Tensor
    labels: torch.Tensor
    info: torch.Tensor
    classes: tuple[str, ...]
    source: Path

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_smallnorb(
    split: str = "train", data_dir: str | os.PathLike[str] | None = None, download: bool = False
) -> NorbSet:
    """smallNORB's ``split`` (24,300 stereo pairs each); ``info`` columns: instance, elevation, azimuth, lighting."""
    if split not in PREFIX:
        raise BadInputError(f"split must be train or test, got {split!r}")
    folder = SMALLNORB.locate(data_dir, download)
    paths = {k: _file(folder, split, k) for k in KINDS}
    dat, cat, info = (read_norb(p) for p in paths.values() if p is not None)
    if dat.ndim != 4 or dat.shape[1] != 2 or dat.dtype != np.uint8:
        raise BadInputError(f"{paths['dat']}: expected (N, 2, H, W) uint8 stereo pairs, found {dat.shape} {dat.dtype}")
    if cat.shape != (len(dat),) or (len(cat) and not 0 <= cat.min() <= cat.max() < len(CATEGORIES)):
        raise BadInputError(f"{paths['cat']}: expected {len(dat)} categories in 0..4, found shape {cat.shape}")
    if info.shape != (len(dat), 4):
        raise BadInputError(f"{paths['info']}: expected shape ({len(dat)}, 4), found {info.shape}")
    return NorbSet(
        images=torch.from_numpy(np.array(dat)),
        labels=torch.from_numpy(cat.astype(np.int64)),
        info=torch.from_numpy(info.astype(np.int64)),
        classes=CATEGORIES,
        source=folder,
    )


SMALLNORB = DatasetSpec(
    name="smallnorb",
    title="smallNORB",
    subdirs=("smallnorb", "norb-v1.0-small"),
    problem=_problem,
    summary=_summary,
    how="fetch the six smallnorb-*.mat.gz files of https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/ into DIR/smallnorb",
    expected="48,600 stereo pairs 96x96 (24,300 train, 24,300 test)",
    used_by="metavae with --set dataset=smallnorb (left camera, 32x32)",
)
