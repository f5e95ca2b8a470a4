"""Random and mutated bytes at every reader: a result or a one-line BadInputError naming the file, nothing else."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etude.data.cifar import read_batch
from etude.data.idx import read_idx
from etude.data.piano import read_wav
from etude.data.smallnorb import read_norb
from etude.errors import BadInputError

IDX = b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + bytes(6)
NORB = struct.pack("<II3I", 0x1E3D4C55, 2, 2, 3, 1) + bytes(6)
CIFAR = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [1]}, protocol=2)
WAV = b"RIFF" + struct.pack("<I", 36 + 4) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
WAV += b"data" + struct.pack("<I", 4) + bytes(4)

READERS = {"idx": (read_idx, IDX), "norb": (read_norb, NORB), "cifar": (read_batch, CIFAR), "wav": (read_wav, WAV)}


@pytest.mark.parametrize("kind", list(READERS))
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_give_a_result_or_one_line(tmp_path, kind, data) -> None:
    reader, good = READERS[kind]
    raw = bytearray(good)
    for _ in range(data.draw(st.integers(0, 4))):
        if raw and data.draw(st.booleans()):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        else:
            raw = raw[: data.draw(st.integers(0, len(raw)))]
    if data.draw(st.booleans()):
        raw = bytearray(data.draw(st.binary(max_size=64)))
    name = "f.gz" if kind in ("idx", "norb") and data.draw(st.booleans()) else "f"
    path = tmp_path / name
    path.write_bytes(gzip.compress(bytes(raw)) if name.endswith(".gz") and data.draw(st.booleans()) else bytes(raw))
    try:
        reader(path)
    except BadInputError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
