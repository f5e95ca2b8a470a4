"""What etude knows of one dataset: its folder names, where it is looked for, how to get it.

A dataset is looked for, in order, in the sub-folders of ``data_dir`` named for the dataset and in
``data_dir`` itself, then under ``$ETUDE_DATA`` and etude's own download folder (``$XDG_CACHE_HOME/etude/data``, by
default ``~/.cache/etude/data``), then in the system folders a Debian package installs it to.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from etude.errors import MissingDataError

__all__ = ["ENV", "DatasetSpec", "default_root", "download_root", "search_roots"]

ENV = "ETUDE_DATA"
"""The environment variable naming a folder that holds datasets (one sub-folder each)."""


def default_root() -> Path:
    """etude's download folder: ``$XDG_CACHE_HOME/etude/data`` (``~/.cache/etude/data`` by default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "etude" / "data"


def search_roots(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders that hold datasets, in the order they are searched: ``data_dir``, ``$ETUDE_DATA``, the cache."""
    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get(ENV):
        roots.append(Path(os.environ[ENV]))
    roots.append(default_root())
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def download_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a download goes: ``data_dir``, else ``$ETUDE_DATA``, else the cache folder."""
    return search_roots(data_dir)[0]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: ``problem(folder)`` is None when ``folder`` holds it whole, else what is missing there.

    ``summary(folder)`` describes what is present (items and bytes, read from headers only);
    ``how`` is the one command (or URL) that gets it; ``checksums`` the published MD5 of its files.
    """

    name: str
    title: str
    subdirs: tuple[str, ...]
    problem: Callable[[Path], str | None]
    summary: Callable[[Path], str]
    how: str
    expected: str
    used_by: str
    system_dirs: tuple[str, ...] = ()
    checksums: dict[str, str] = field(default_factory=dict)
    downloadable: bool = False

    def candidates(self, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
        """Every folder that may hold the dataset, in search order."""
        found: list[Path] = []
        for k, root in enumerate(search_roots(data_dir)):
            found.extend(root / sub for sub in self.subdirs)
            if k == 0 and data_dir:  # after its sub-folders: DIR may be the dataset's folder itself
                found.append(root)
        found.extend(Path(d) for d in self.system_dirs)
        unique: list[Path] = []
        for path in found:
            if path not in unique:
                unique.append(path)
        return unique

    def find(self, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
        """The first candidate folder that holds the whole dataset, or None."""
        for folder in self.candidates(data_dir):
            if folder.is_dir() and self.problem(folder) is None:
                return folder
        return None

    def locate(self, data_dir: str | os.PathLike[str] | None = None, download: bool = False) -> Path:
        """The folder holding the dataset; downloads it first when absent and ``download``; else MissingDataError."""
        folder = self.find(data_dir)
        if folder is not None:
            return folder
        if download:
            if not self.downloadable:
                raise MissingDataError(f"etude cannot download {self.title}; get it: {self.how}")
            from etude.data.download import fetch

            fetch(self, download_root(data_dir))
            folder = self.find(data_dir)
            if folder is not None:
                return folder
        raise MissingDataError(self.missing_message(data_dir))

    def missing_message(self, data_dir: str | os.PathLike[str] | None = None) -> str:
        """One line: what is wrong in the likeliest folder that exists, how to get the dataset, where etude looked.

        A folder named for the dataset is likelier than ``data_dir`` itself, which may hold other datasets.
        """
        looked = self.candidates(data_dir)
        likeliest = [p for p in looked if not data_dir or p != Path(data_dir)] + ([Path(data_dir)] if data_dir else [])
        wrong = next(
            (f": {folder}: {self.problem(folder)}" for folder in likeliest if folder.is_dir() and self.problem(folder)),
            "",
        )
        places = ", ".join(str(p) for p in looked)
        return f"{self.title} not found{wrong}; get it: {self.how} (looked in {places})"
