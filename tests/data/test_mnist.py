"""MNIST and Fashion-MNIST from tiny IDX folders in their real layouts; where they are looked for; the real
Fashion-MNIST of Debian's dataset-fashion-mnist when installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.data.data_files import write_mnist

import etude.data.download as download
from etude.data import load_fashion_mnist, load_mnist
from etude.data.idx import write_idx
from etude.data.mnist import FASHION_MNIST, MNIST
from etude.errors import BadInputError, MissingDataError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def test_loads_a_gzipped_folder_under_data_dir(tmp_path) -> None:
    arrays = write_mnist(tmp_path / "mnist")
    train, test = load_mnist("train", tmp_path), load_mnist("test", tmp_path)
    assert train.source == tmp_path / "mnist"
    assert train.images.shape == (6, 28, 28) and test.images.shape == (4, 28, 28)
    assert np.array_equal(train.images.numpy(), arrays["train-images"])
    assert np.array_equal(test.labels.numpy(), arrays["t10k-labels"]) and test.labels.dtype.is_floating_point is False
    assert train.classes == tuple("0123456789") and len(train) == 6


def test_torchvision_layout_found_through_etude_data(tmp_path, monkeypatch) -> None:
    arrays = write_mnist(tmp_path / "root" / "FashionMNIST" / "raw", gz=False, seed=1)
    monkeypatch.setenv("ETUDE_DATA", str(tmp_path / "root"))
    got = load_fashion_mnist("test")
    assert got.source == tmp_path / "root" / "FashionMNIST" / "raw"
    assert np.array_equal(got.images.numpy(), arrays["t10k-images"])
    assert got.classes[0] == "T-shirt/top" and got.classes[9] == "Ankle boot"


def test_data_dir_comes_before_etude_data(tmp_path, monkeypatch) -> None:
    write_mnist(tmp_path / "env" / "mnist", n=(3, 2))
    write_mnist(tmp_path / "mine" / "mnist", n=(5, 2))
    monkeypatch.setenv("ETUDE_DATA", str(tmp_path / "env"))
    assert len(load_mnist("train", tmp_path / "mine")) == 5
    assert len(load_mnist("train")) == 3


def test_missing_says_where_it_looked_and_how_to_get_it_without_downloading(tmp_path) -> None:
    with pytest.raises(MissingDataError) as info:
        load_mnist("train", tmp_path)
    message = str(info.value)
    assert "\n" not in message and "MNIST not found" in message
    assert str(tmp_path / "mnist") in message and str(tmp_path / "xdg_cache" / "etude" / "data" / "mnist") in message
    assert message.startswith(f"MNIST not found: {tmp_path}: no train-images-idx3-ubyte, ")
    assert "; get it: etude data get mnist --download (looked in " in message
    with pytest.raises(MissingDataError) as info:
        load_mnist("test")
    assert str(info.value).startswith("MNIST not found; get it: etude data get mnist --download (looked in ")


def test_an_incomplete_folder_names_the_missing_file(tmp_path) -> None:
    write_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MissingDataError, match=r"mnist: no t10k-labels-idx1-ubyte \(or \.gz\)"):
        load_mnist("train", tmp_path)


def test_download_true_fetches_into_data_dir_then_loads(tmp_path, monkeypatch) -> None:
    calls = []

    def fake_fetch(spec, root):  # what torchvision's MNIST(root, download=True) leaves: root/MNIST/raw
        calls.append((spec.name, root))
        write_mnist(root / "MNIST" / "raw", gz=False)

    monkeypatch.setattr(download, "fetch", fake_fetch)
    assert len(load_mnist("test", tmp_path, download=True)) == 4
    assert calls == [("mnist", tmp_path)]
    assert len(load_mnist("test", tmp_path, download=True)) == 4 and len(calls) == 1  # present: no second fetch


def test_labels_that_do_not_match_the_images_are_refused(tmp_path) -> None:
    write_mnist(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(BadInputError, match=r"train-labels-idx1-ubyte\.gz: expected 6 uint8 labels"):
        load_mnist("train", tmp_path)
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.full(6, 10, dtype=np.uint8))
    with pytest.raises(BadInputError, match="label 10 outside 0..9"):
        load_mnist("train", tmp_path)
    with pytest.raises(BadInputError, match="split must be one of train, test"):
        load_mnist("valid", tmp_path)


def test_fashion_mnist_is_looked_for_in_the_debian_folder() -> None:
    assert FASHION_MNIST.candidates()[-1] == DEBIAN and DEBIAN not in MNIST.candidates()


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="dataset-fashion-mnist is not installed (make system-deps as root)")
def test_the_real_fashion_mnist_of_the_debian_package() -> None:
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    assert train.source == DEBIAN
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.labels.bincount().tolist() == [6000] * 10 and test.labels.bincount().tolist() == [1000] * 10
    assert 0 < float(train.images.float().mean()) < 255 and int(train.images.max()) == 255
