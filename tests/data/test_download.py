"""The download path with torchvision replaced by a recorder (no test downloads anything), and what a missing
or broken torchvision says."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

import etude.data.download as download
from etude.data.cifar import CIFAR10
from etude.data.download import fetch as real_fetch  # taken at import, before conftest's fixture replaces it
from etude.data.download import torchvision_datasets as real_torchvision_datasets
from etude.data.maestro import MAESTRO
from etude.data.mnist import FASHION_MNIST, MNIST
from etude.data.omniglot import OMNIGLOT
from etude.errors import MissingDataError, MissingDependencyError


def recorder(calls: list, fail: Exception | None = None) -> SimpleNamespace:
    def make(cls):
        def build(root, **kwargs):
            calls.append((cls, root, kwargs))
            if fail is not None:
                raise fail

        return build

    return SimpleNamespace(**{c: make(c) for c in ("MNIST", "FashionMNIST", "CIFAR10", "Omniglot")})


def test_each_dataset_goes_to_its_torchvision_class_with_download_true(tmp_path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(download, "torchvision_datasets", lambda: recorder(calls))
    for spec in (MNIST, FASHION_MNIST, CIFAR10, OMNIGLOT):
        real_fetch(spec, tmp_path / "root")
    root = str(tmp_path / "root")
    assert calls == [
        ("MNIST", root, {"train": True, "download": True}),
        ("FashionMNIST", root, {"train": True, "download": True}),
        ("CIFAR10", root, {"train": True, "download": True}),
        ("Omniglot", root, {"background": True, "download": True}),
        ("Omniglot", root, {"background": False, "download": True}),
    ]


def test_a_failed_download_and_a_dataset_etude_cannot_download(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(
        download, "torchvision_datasets", lambda: recorder([], RuntimeError("Error downloading x\nmore"))
    )
    with pytest.raises(MissingDataError, match=r"downloading MNIST into \S+ failed \(Error downloading x\)$"):
        real_fetch(MNIST, tmp_path)
    with pytest.raises(MissingDataError, match="etude cannot download MAESTRO v3.0.0; get it: fetch https://"):
        real_fetch(MAESTRO, tmp_path)


class _BrokenBuild:
    """A meta-path finder whose torchvision fails as PyPI's CUDA wheel does beside a CPU-only torch."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torchvision":
            raise RuntimeError("operator torchvision::nms does not exist\n(traceback)")
        return None


def test_torchvision_absent_or_broken_names_what_to_install(monkeypatch) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'etude\[data\]'"):
        real_torchvision_datasets()
    monkeypatch.delitem(sys.modules, "torchvision")
    monkeypatch.setattr(sys, "meta_path", [_BrokenBuild(), *sys.meta_path])
    with pytest.raises(MissingDependencyError) as info:
        real_torchvision_datasets()
    message = str(info.value)
    assert "(operator torchvision::nms does not exist)" in message and "\n" not in message
    assert "pip install torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu" in message
