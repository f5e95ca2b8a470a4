"""Downloads, through torchvision's dataset classes (the ``data`` extra): only when the caller asks
(``download=True``, ``etude data get NAME --download``); nothing in etude downloads otherwise.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Protocol

from etude.errors import MissingDataError, MissingDependencyError

__all__ = ["fetch", "torchvision_datasets"]


class Downloadable(Protocol):
    """What `fetch` reads of a dataset (`etude.data.spec.DatasetSpec` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def how(self) -> str: ...
    @property
    def downloadable(self) -> bool: ...


def torchvision_datasets() -> ModuleType:
    """``torchvision.datasets``, or a MissingDependencyError saying which torchvision to install."""
    import torch

    try:
        import torchvision.datasets as datasets
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "torchvision":
            raise
        raise MissingDependencyError(
            "downloading needs torchvision, which is not installed: pip install 'etude[data]'"
        ) from exc
    except (ImportError, RuntimeError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MissingDependencyError(
            f"torchvision is installed but does not load against torch {torch.__version__} ({first}): install the "
            "matching build, e.g. for a CPU torch pip install torchvision==0.28.0 "
            "--index-url https://download.pytorch.org/whl/cpu"
        ) from exc
    return datasets


def fetch(spec: Downloadable, root: Path) -> None:
    """Download ``spec``'s dataset under ``root`` in torchvision's layout (which etude's loaders search)."""
    if not spec.downloadable:
        raise MissingDataError(f"etude cannot download {spec.title}; get it: {spec.how}")
    datasets = torchvision_datasets()
    root.mkdir(parents=True, exist_ok=True)
    try:
        if spec.name == "mnist":
            datasets.MNIST(str(root), train=True, download=True)
        elif spec.name == "fashion-mnist":
            datasets.FashionMNIST(str(root), train=True, download=True)
        elif spec.name == "cifar10":
            datasets.CIFAR10(str(root), train=True, download=True)
        elif spec.name == "omniglot":
            datasets.Omniglot(str(root), background=True, download=True)
            datasets.Omniglot(str(root), background=False, download=True)
        else:
            raise MissingDataError(f"etude cannot download {spec.title}; get it: {spec.how}")
    except (OSError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MissingDataError(f"downloading {spec.title} into {root} failed ({first})") from exc
