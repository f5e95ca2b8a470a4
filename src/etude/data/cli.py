"""`etude data` (list every dataset: where etude looked, present or not, its size, how to get it) and
`etude data get NAME [--download]` (find or fetch it, load it whole, check its published checksums)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from etude.data.catalog import DATASETS, checksum_report, get_spec, status
from etude.data.images import LabelledImages
from etude.data.smallnorb import NorbSet


def _data_dir(args: argparse.Namespace) -> str | None:
    return getattr(args, "data_dir", None) or getattr(args, "top_data_dir", None)


def _list(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    for spec in DATASETS.values():
        found = status(spec, data_dir)
        state = f"present  {found.folder}  {found.summary}" if found.folder else "missing"
        print(f"{spec.name:<14} {spec.title}: {state}")
        if found.folder is None:
            print(f"    looked in: {', '.join(str(p) for p in found.looked)}")
            print(f"    get it: {spec.how}")
        print(f"    expected: {spec.expected}; used by: {spec.used_by}")
    return 0


def _load_all(name: str, data_dir: str | None) -> list[str]:
    """Load every split of dataset ``name`` whole; one line each."""
    from etude.data import (
        load_cifar10,
        load_fashion_mnist,
        load_mnist,
        load_omniglot,
        load_piano,
        load_smallnorb,
        maestro_splits,
    )

    if name == "maestro":
        return [f"{split}: {len(paths)} MIDI files" for split, paths in maestro_splits(data_dir).items()]
    if name == "piano":
        tracks = load_piano(data_dir)
        return [f"{len(tracks)} recordings, {sum(len(t) for t in tracks) / 16_000 / 60:.1f} minutes at 16 kHz"]
    loaders: dict[str, tuple[Callable[..., LabelledImages | NorbSet], tuple[str, str]]] = {
        "mnist": (load_mnist, ("train", "test")),
        "fashion-mnist": (load_fashion_mnist, ("train", "test")),
        "cifar10": (load_cifar10, ("train", "test")),
        "omniglot": (load_omniglot, ("background", "evaluation")),
        "smallnorb": (load_smallnorb, ("train", "test")),
    }
    load, splits = loaders[name]
    lines = []
    for split in splits:
        data = load(split, data_dir)
        lines.append(
            f"{split}: images {tuple(data.images.shape)} {str(data.images.dtype).removeprefix('torch.')}, "
            f"{len(data.classes)} classes, labels per class {min(data.labels.bincount().tolist())}"
            f"-{max(data.labels.bincount().tolist())}"
        )
    return lines


def _get(args: argparse.Namespace) -> int:
    spec = get_spec(args.name)
    data_dir = _data_dir(args)
    folder = spec.locate(data_dir, download=args.download)
    print(f"{spec.title}: {folder}  {spec.summary(folder)}")
    for line in _load_all(spec.name, data_dir) + checksum_report(spec, folder):
        print(f"    {line}")
    return 0


def add_commands(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `etude data [list|get NAME]` to the top-level subcommands."""
    data = sub.add_parser("data", help="the papers' datasets: where etude looks, which are present, how to get each")
    data.add_argument(
        "--data-dir", dest="top_data_dir", default=None, help="a folder holding datasets (searched first)"
    )
    data.set_defaults(func=_list)
    verbs = data.add_subparsers(dest="verb", required=False, parser_class=parser_class)
    listing = verbs.add_parser("list", help="every dataset: where etude looked, present or not, size, how to get it")
    listing.add_argument("--data-dir", default=None, help="a folder holding datasets (searched first)")
    listing.set_defaults(func=_list)
    get = verbs.add_parser("get", help="find (or with --download fetch) one dataset, load it whole, check checksums")
    get.add_argument("name", choices=list(DATASETS))
    get.add_argument("--data-dir", default=None, help="a folder holding datasets; downloads go there")
    get.add_argument(
        "--download",
        action="store_true",
        help="download it if absent (torchvision; MNIST, Fashion-MNIST, CIFAR-10, Omniglot)",
    )
    get.set_defaults(func=_get)
