"""The papers' datasets: one loader each, where it is looked for, how to get it (`etude data`).

Loaders read the files on disk themselves and never download unless called with ``download=True``
(torchvision, the ``data`` extra, fetches MNIST, Fashion-MNIST, CIFAR-10 and Omniglot). A dataset is
looked for in ``data_dir``, ``$ETUDE_DATA``, ``~/.cache/etude/data`` and the Debian package's folder
(Fashion-MNIST: /usr/share/datasets/fashion-mnist); when absent, a ``MissingDataError`` says how to get it.
"""

from etude.data.catalog import DATASETS, get_spec, status
from etude.data.cifar import load_cifar10
from etude.data.images import LabelledImages
from etude.data.maestro import maestro_splits
from etude.data.mnist import load_fashion_mnist, load_mnist
from etude.data.omniglot import load_omniglot
from etude.data.piano import load_piano, read_wav
from etude.data.smallnorb import NorbSet, load_smallnorb
from etude.data.spec import DatasetSpec

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "LabelledImages",
    "NorbSet",
    "get_spec",
    "load_cifar10",
    "load_fashion_mnist",
    "load_mnist",
    "load_omniglot",
    "load_piano",
    "load_smallnorb",
    "maestro_splits",
    "read_wav",
    "status",
]
