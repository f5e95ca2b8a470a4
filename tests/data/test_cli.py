"""`etude data` and `etude data get`: the listing, loading a present dataset, and one-line refusals (exit 2)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from tests.data.data_files import ROWS, write_maestro, write_mnist, write_wav

import etude.data.catalog as catalog
import etude.data.download as download
from etude.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_listing_names_every_dataset_and_how_to_get_the_missing(tmp_path, capsys) -> None:
    write_mnist(tmp_path / "mnist", n=(7, 3))
    code, out, err = run(capsys, "data", "--data-dir", str(tmp_path))
    assert code == 0 and err == ""
    for name in ("fashion-mnist", "mnist", "cifar10", "omniglot", "smallnorb", "maestro", "piano"):
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    mnist = next(line for line in out.splitlines() if line.startswith("mnist "))
    assert f"present  {tmp_path / 'mnist'}  10 images 28x28" in mnist
    assert "get it: etude data get cifar10 --download" in out
    assert "get it: fetch https://storage.googleapis.com/magentadata/datasets/maestro/v3.0.0/" in out
    assert (
        f"looked in: {tmp_path / 'cifar-10-batches-py'}, {tmp_path / 'cifar10' / 'cifar-10-batches-py'}, {tmp_path}, "
        in out
    )
    code, out2, _ = run(capsys, "data", "list", "--data-dir", str(tmp_path))
    assert code == 0 and out2 == out


def test_get_loads_a_present_dataset(tmp_path, capsys) -> None:
    write_mnist(tmp_path / "mnist", n=(20, 10))
    code, out, err = run(capsys, "data", "get", "mnist", "--data-dir", str(tmp_path))
    assert code == 0, err
    assert "train: images (20, 28, 28) uint8, 10 classes, labels per class 2-2" in out
    assert "test: images (10, 28, 28) uint8" in out
    assert "train-images-idx3-ubyte.gz: MD5 differs from the published f68b3c2dcbeaaa9fbdd348bbdeb94873" in out


def _broken_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """dataset -> (argv, text the one error line must hold) for each kind of bad input."""
    cases = {}
    root = tmp_path / "truncated"
    write_mnist(root / "mnist")
    (root / "mnist" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x06" * 3 + b"\x00")
    (root / "mnist" / "train-images-idx3-ubyte.gz").unlink()
    cases["truncated IDX"] = (["mnist", root], "train-images-idx3-ubyte: truncated IDX file")
    root = tmp_path / "magic"
    write_mnist(root / "fashion-mnist")
    (root / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    (root / "fashion-mnist" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd"[::-1])
    cases["wrong magic"] = (["fashion-mnist", root], "t10k-labels-idx1-ubyte: wrong magic number")
    root = tmp_path / "cifar"
    (root / "cifar-10-batches-py").mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072 if name != "data_batch_4" else 3000), np.uint8), b"labels": [0, 1]}
        (root / "cifar-10-batches-py" / name).write_bytes(pickle.dumps(batch, protocol=2))
    cases["CIFAR shape"] = (["cifar10", root], "data_batch_4: a CIFAR-10 batch's data is uint8 of shape (N, 3072)")
    root = tmp_path / "omniglot"
    (root / "omniglot-py" / "Greek").mkdir(parents=True)
    cases["Omniglot splits"] = (
        ["omniglot", root],
        "omniglot-py: holds neither images_background nor images_evaluation",
    )
    root = tmp_path / "maestro"
    write_maestro(root / "maestro-v3.0.0", ROWS)
    cases["MAESTRO files"] = (["maestro", root], "maestro-v3.0.0.csv: names 4 MIDI files that are not there")
    root = tmp_path / "wav"
    write_wav(root / "piano" / "a.wav", np.zeros(100), 16_000)
    (root / "piano" / "b.wav").write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    cases["unreadable WAV"] = (["piano", root], "b.wav: unreadable WAV")
    cases["missing"] = (["mnist", tmp_path / "empty"], "MNIST not found; get it: etude data get mnist --download")
    cases["no download"] = (["smallnorb", tmp_path / "empty", "--download"], "etude cannot download smallNORB; get it:")
    return {k: ([str(a) for a in argv], text) for k, (argv, text) in cases.items()}


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    for case, (argv, text) in _broken_inputs(tmp_path).items():
        name, root, *rest = argv
        code, out, err = run(capsys, "data", "get", name, "--data-dir", root, *rest)
        assert code == 2, (case, out, err)
        assert err.startswith("etude: error: ") and err.count("\n") == 1 and "Traceback" not in err, (case, err)
        assert text in err, (case, err)


def test_unknown_dataset_is_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["data", "get", "imagenet"])
    assert info.value.code == 2 and "invalid choice: 'imagenet'" in capsys.readouterr().err


def test_download_flag_reaches_the_download_path_only_when_given(tmp_path, capsys, monkeypatch) -> None:
    calls = []

    def fake_fetch(spec, root):
        calls.append((spec.name, root))
        write_mnist(root / "FashionMNIST" / "raw", n=(10, 10))

    monkeypatch.setattr(download, "fetch", fake_fetch)
    monkeypatch.setattr("etude.data.mnist.FASHION_MNIST", _no_system(), raising=True)
    monkeypatch.setitem(catalog.DATASETS, "fashion-mnist", _no_system())
    code, _, err = run(capsys, "data", "get", "fashion-mnist", "--data-dir", str(tmp_path))
    assert code == 2 and calls == [] and "Fashion-MNIST not found" in err
    code, out, err = run(capsys, "data", "get", "fashion-mnist", "--data-dir", str(tmp_path), "--download")
    assert code == 0 and calls == [("fashion-mnist", tmp_path)], err
    assert "train: images (10, 28, 28) uint8" in out


def _no_system():
    """Fashion-MNIST's spec without the Debian folder, so that the test sees only tmp_path."""
    import dataclasses

    from etude.data.mnist import FASHION_MNIST

    return dataclasses.replace(FASHION_MNIST, system_dirs=())
