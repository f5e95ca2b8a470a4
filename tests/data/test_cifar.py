"""CIFAR-10 from tiny python pickles in the release's layout (dicts of bytes keys, as Python 2 wrote them)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from tests.data.data_files import write_cifar

from etude.data import load_cifar10
from etude.data.cifar import read_batch
from etude.errors import BadInputError, MissingDataError


def test_loads_train_and_test_in_channel_row_column_order(tmp_path) -> None:
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    train, test = load_cifar10("train", tmp_path), load_cifar10("test", tmp_path)
    assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    # The row of a batch holds 1024 red, then 1024 green, then 1024 blue bytes, each image row by row.
    row = batches["data_batch_2"][1]
    image = train.images[3 + 1].numpy()
    for c, h, w in [(0, 0, 0), (1, 5, 7), (2, 31, 30), (0, 31, 31)]:
        assert image[c, h, w] == row[c * 1024 + h * 32 + w]
    assert train.labels.tolist()[:6] == [0, 1, 2, 1, 2, 3]
    assert test.labels.tolist() == [5, 6, 7] and train.classes[9] == "truck"


def test_a_batch_of_the_wrong_shape_names_the_file(tmp_path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((3, 1024), np.uint8), b"labels": [0] * 3}))
    with pytest.raises(BadInputError) as info:
        load_cifar10("train", tmp_path)
    assert str(folder / "data_batch_3") in str(info.value) and "(N, 3072), found (3, 1024)" in str(info.value)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0]}))
    with pytest.raises(BadInputError, match="expected 3 labels in 0..9"):
        read_batch(folder / "data_batch_3")
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((3, 3072), np.uint8)})[:40])
    with pytest.raises(BadInputError, match="data_batch_3: not a readable CIFAR-10 batch"):
        read_batch(folder / "data_batch_3")


class _Payload:
    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_a_pickle_that_would_run_code_is_refused(tmp_path) -> None:
    payload = _Payload()
    payload.target = tmp_path / "pwned"
    (tmp_path / "evil").write_bytes(pickle.dumps({b"data": payload}))
    with pytest.raises(BadInputError, match="refusing to load pathlib"):
        read_batch(tmp_path / "evil")
    assert not (tmp_path / "pwned").exists()


def test_missing_batches_are_named(tmp_path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(
        MissingDataError,
        match=r"CIFAR-10 not found: \S+/cifar-10-batches-py: no test_batch; get it: etude data get cifar10",
    ):
        load_cifar10("test", tmp_path)
