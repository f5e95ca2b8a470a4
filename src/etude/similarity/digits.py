"""Small MLPs and CNNs on scikit-learn's bundled digits, trained on true or shuffled labels.

The experiment of Morcos, Raghu, Bengio 2018 (arXiv:1806.05759), Sec. 3.1 (generalizing vs
memorizing networks, after Zhang et al. 2017's randomized labels), at the scale of 1,797 8x8
digits: `load_digits` ships with scikit-learn, nothing is downloaded. Conv layers are compared as
in Raghu et al. 2017 (arXiv:1706.05806), Sec. 2.2: each channel is a neuron and every spatial
position of every image a datapoint (`flatten_conv`).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from etude.errors import BadInputError, MissingDependencyError
from etude.runtime import Saved, is_rank_zero, precision_of, shard, train_loop
from etude.similarity.activations import capture_activations, flatten_conv

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = [
    "ARCHITECTURES",
    "Digits",
    "TrainedNet",
    "accuracy",
    "hidden_layers",
    "load_digits_split",
    "load_image_split",
    "image_shape",
    "IMAGE_DATASETS",
    "make_cnn",
    "make_mlp",
    "make_net",
    "representations",
    "train_mlp",
]

ARCHITECTURES = ("mlp", "cnn")
"""mlp: dense layers of the given widths; cnn: 3x3 conv layers of the given channels on the 8x8 image."""


@dataclass(frozen=True)
class Digits:
    """Standardized digits split into train and test (features scaled by the train statistics)."""

    x_train: torch.Tensor
    """(n_train, pixels) float32 inputs (64 for the 8x8 digits)."""
    y_train: torch.Tensor
    """(n_train,) true labels 0-9."""
    x_test: torch.Tensor
    """(n_test, pixels) float32 inputs."""
    y_test: torch.Tensor
    """(n_test,) true labels."""

    def shuffled_labels(self, seed: int) -> torch.Tensor:
        """One fixed random relabelling of the training set: a permutation of y_train (class counts kept)."""
        generator = torch.Generator().manual_seed(seed)
        return self.y_train[torch.randperm(len(self.y_train), generator=generator)]


def _digits_table() -> np.ndarray:
    """The 1,797 x 65 table (64 pixels, label) that scikit-learn ships as datasets/data/digits.csv.gz.

    Read directly when the file is where scikit-learn keeps it (importing sklearn.datasets takes
    seconds), else through ``sklearn.datasets.load_digits``.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("the digits data need scikit-learn: pip install scikit-learn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if path.is_file():
        table = np.loadtxt(path, delimiter=",")
        if table.shape == (1797, 65):
            return table
    from sklearn.datasets import load_digits

    data = load_digits()
    return np.column_stack([data.data, data.target])


def load_digits_split(test_fraction: float = 0.2, seed: int = 0) -> Digits:
    """scikit-learn's 1,797 digits, shuffled with `seed` and split; features standardized."""
    if not 0 < test_fraction < 1:
        raise BadInputError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    table = _digits_table()
    x = torch.tensor(table[:, :-1], dtype=torch.float32)
    y = torch.tensor(table[:, -1], dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    n_test = int(round(test_fraction * len(x)))
    x_train, x_test = x[n_test:], x[:n_test]
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-3)  # constant border pixels stay 0
    return Digits((x_train - mean) / std, y[n_test:], (x_test - mean) / std, y[:n_test])


IMAGE_DATASETS = ("digits", "fashion-mnist", "mnist", "cifar10")
"""What ``dataset`` may name: the bundled 8x8 digits, or an image set of `etude.data`."""


def load_image_split(
    dataset: str = "digits",
    test_fraction: float = 0.2,
    seed: int = 0,
    *,
    data_dir: str = "",
    train_size: int = 0,
    test_size: int = 0,
) -> Digits:
    """`load_digits_split` for 'digits'; for an `etude.data` image set (MNIST, Fashion-MNIST 28x28, CIFAR-10
    3x32x32) a seeded subset of ``train_size`` of its training and ``test_size`` of its test split (0 = all),
    flattened, each pixel standardized by the training statistics; MissingDataError when absent."""
    from etude.data.use import check_dataset, load_images, take

    check_dataset("dataset", dataset, IMAGE_DATASETS)
    if dataset == "digits":
        return load_digits_split(test_fraction, seed=seed)
    x_train, y_train = take(load_images(dataset, "train", data_dir), train_size, seed)
    x_test, y_test = take(load_images(dataset, "test", data_dir), test_size, seed + 1)
    x_train, x_test = x_train.flatten(1).to(torch.float32), x_test.flatten(1).to(torch.float32)
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-3)
    return Digits((x_train - mean) / std, y_train.long(), (x_test - mean) / std, y_test.long())


def make_mlp(widths: Sequence[int], seed: int, inputs: int = 64, classes: int = 10) -> nn.Sequential:
    """An MLP inputs -> widths[0] -> ... -> classes with ReLUs, initialized from `seed`.

    Hidden layer i (1-based) is the module ``relu{i}``; its output is the representation compared.
    """
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise BadInputError(f"widths must be a non-empty list of positive ints, got {widths!r}")
    layers: list[tuple[str, nn.Module]] = []
    fan_in = inputs
    with torch.random.fork_rng(devices=[]):  # the global generator is left as it was
        torch.manual_seed(seed)
        for i, width in enumerate(widths, start=1):
            layers += [(f"fc{i}", nn.Linear(fan_in, width)), (f"relu{i}", nn.ReLU())]
            fan_in = width
        layers.append(("out", nn.Linear(fan_in, classes)))
    return nn.Sequential(OrderedDict(layers))


def image_shape(inputs: int) -> tuple[int, int]:
    """(channels, side) of a flattened square image of ``inputs`` values: grey when ``inputs`` is a square
    (64 = 8x8 digits, 784 = 28x28), RGB when it is 3 times one (3,072 = 3x32x32, CIFAR-10); no number is
    both (sqrt 3 is irrational), so the size alone decides."""
    for colours in (1, 3):
        side = int(round((inputs / colours) ** 0.5))
        if inputs % colours == 0 and side * side * colours == inputs:
            return colours, side
    raise BadInputError(f"a CNN needs square images: inputs must be s^2 or 3 s^2, got {inputs}")


def make_cnn(channels: Sequence[int], seed: int, inputs: int = 64, classes: int = 10) -> nn.Sequential:
    """A CNN on the image (8x8, 28x28 grey or 3x32x32 colour, see `image_shape`): 3x3 convolutions (padding 1) with ``channels`` and ReLUs, then a linear
    read-out of the flattened last layer; initialized from `seed`. Hidden layer i is ``relu{i}``."""
    if not channels or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
        raise BadInputError(f"channels must be a non-empty list of positive ints, got {channels!r}")
    colours, side = image_shape(inputs)
    layers: list[tuple[str, nn.Module]] = [("image", nn.Unflatten(1, (colours, side, side)))]
    fan_in = colours
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, c in enumerate(channels, start=1):
            layers += [(f"conv{i}", nn.Conv2d(fan_in, c, 3, padding=1)), (f"relu{i}", nn.ReLU())]
            fan_in = c
        layers += [("flatten", nn.Flatten()), ("out", nn.Linear(fan_in * side * side, classes))]
    return nn.Sequential(OrderedDict(layers))


def make_net(arch: str, widths: Sequence[int], seed: int, inputs: int = 64, classes: int = 10) -> nn.Sequential:
    """`make_mlp` (arch 'mlp') or `make_cnn` (arch 'cnn', widths = channels)."""
    if arch not in ARCHITECTURES:
        raise BadInputError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    return (make_mlp if arch == "mlp" else make_cnn)(widths, seed, inputs=inputs, classes=classes)


def hidden_layers(model: nn.Sequential) -> list[str]:
    """Names of the hidden representations (``relu1``, ``relu2``, ...) of a `make_mlp` network."""
    return [name for name, _ in model.named_children() if name.startswith("relu")]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of `x` classified as `y`."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).double().mean())
    model.train(was_training)
    return acc


def _fingerprint(x: torch.Tensor, y: torch.Tensor) -> str:
    """A short hash of the training inputs and labels, stored with checkpoints."""
    digest = hashlib.sha1(x.detach().cpu().contiguous().numpy().tobytes())
    digest.update(y.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def representations(model: nn.Sequential, probe: torch.Tensor) -> list[torch.Tensor]:
    """The hidden representations of `probe` (n, 64): one (n, width) float64 tensor per hidden layer;
    conv layers (n, C, H, W) become (n H W, C)."""
    acts = capture_activations(model, probe, hidden_layers(model))
    return [(flatten_conv(a) if a.dim() == 4 else a).double() for a in (acts[name] for name in hidden_layers(model))]


@dataclass
class TrainedNet:
    """A network after training, its accuracies and its states at the snapshot epochs."""

    model: nn.Sequential
    widths: list[int]
    train_accuracy: float
    test_accuracy: float
    snapshots: dict[int, dict[str, torch.Tensor]]
    """Epoch -> state_dict after that epoch (the epochs asked for, below the last)."""
    arch: str = "mlp"
    """'mlp' or 'cnn' (see ARCHITECTURES)."""
    inputs: int = 64
    """Input features (pixels)."""

    def representations(self, probe: torch.Tensor, epoch: int | None = None) -> list[torch.Tensor]:
        """Hidden representations of `probe` at the end of training, or after `epoch` (a snapshot)."""
        if epoch is None:
            return representations(self.model, probe)
        if epoch not in self.snapshots:
            raise BadInputError(f"no snapshot after epoch {epoch}; have {sorted(self.snapshots)}")
        model = make_net(self.arch, self.widths, 0, inputs=self.inputs)
        model.load_state_dict(self.snapshots[epoch])
        return representations(model, probe)


def train_mlp(
    widths: Sequence[int],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    seed: int,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 128,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    snapshots: Sequence[int] = (),
    checkpoint: str | Path | None = None,
    resume: bool = False,
    desc: str = "train",
    arch: str = "mlp",
    fabric: Fabric | None = None,
) -> TrainedNet:
    """Train `make_mlp(widths, seed)` with Adam and cross-entropy for `epochs` passes over (x, y).

    Minibatch order comes from a generator seeded with `seed`, so a run is a function of its
    arguments. With `checkpoint`, the weights (and snapshots) are saved atomically every 10 epochs and at
    the end; with `resume` a checkpoint of the same settings continues the run (a finished one is loaded
    instead of training again). `epochs=0`
    returns the untrained network (the study's control).

    With a ``fabric`` (launched, from ``Distributed``) the network trains on ``fabric.device`` at its
    precision; under DDP each of the W ranks takes its contiguous share of every global minibatch
    (the epoch's last, smaller one too) and all end with the weights of one process on the whole
    minibatch; only rank 0 writes the checkpoint, which resumes at any world size. The returned
    network is on the CPU either way.

    :param snapshots: epochs after which to keep a copy of the weights (those below `epochs`).
    :param arch: 'mlp' (widths = hidden units) or 'cnn' (widths = conv channels), see `make_net`.
    """
    keep = sorted(e for e in set(snapshots) if 0 < e < epochs)
    config: dict[str, Any] = {
        "widths": list(widths),
        "seed": seed,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "snapshots": keep,
        "data": _fingerprint(x, y),
    }
    if arch != "mlp":
        config["arch"] = arch  # MLP checkpoints keep their former configuration
    precision = precision_of(fabric)
    if precision != "32-true":
        config["precision"] = precision  # a bf16 network is another network; 32-bit checkpoints keep their config
    model = make_net(arch, list(widths), seed, inputs=x.shape[1])
    kept = _fit(model, x, y, config, checkpoint=checkpoint, resume=resume, desc=desc, fabric=fabric)
    test_acc = accuracy(model, x_test, y_test) if x_test is not None and y_test is not None else float("nan")
    return TrainedNet(model, list(widths), accuracy(model, x, y), test_acc, kept, arch, int(x.shape[1]))


def _minibatch_step(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    order: list[torch.Tensor],
    fabric: Fabric | None,
) -> Callable[[int, nn.Module], torch.Tensor]:
    """``_fit``'s step t: the cross-entropy of minibatch t of the epoch's seeded permutation, kept in ``order``
    (drawn at each epoch's first step); under DDP this rank's shard's summed loss over the minibatch's size."""
    per_epoch = -(-len(x) // batch_size)

    def step(t: int, module: nn.Module) -> torch.Tensor:
        if t % per_epoch == 0:  # the global batches, the same on every rank
            order[:] = torch.randperm(len(x), generator=generator).split(batch_size)
        idx = order[t % per_epoch]
        if fabric is None:
            return nn.functional.cross_entropy(module(x[idx]), y[idx])
        part = shard(idx, fabric, uneven=True).to(fabric.device)
        return nn.functional.cross_entropy(module(x[part]), y[part], reduction="sum") / len(idx)

    return step


def _fit(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    config: dict[str, Any],
    *,
    checkpoint: str | Path | None,
    resume: bool,
    desc: str,
    fabric: Fabric | None,
) -> dict[int, dict[str, torch.Tensor]]:
    """Adam on the mean cross-entropy of each minibatch of a seeded permutation per epoch (``etude.runtime.train_loop``,
    one step per minibatch); the snapshots by epoch. ``model`` ends on the CPU.

    Under DDP rank r's share of a minibatch's mean loss is (sum of its shard's losses) / B, exact
    whatever the shards' sizes (the epoch's last minibatch may be smaller).
    """
    per_epoch = -(-len(x) // config["batch_size"])  # minibatches per epoch, the last one maybe smaller
    if fabric is not None:
        x, y = x.to(fabric.device), y.to(fabric.device)
    generator = torch.Generator().manual_seed(config["seed"])
    order: list[torch.Tensor] = []  # this epoch's minibatches of the seeded permutation
    kept: dict[int, dict[str, torch.Tensor]] = {}

    step = _minibatch_step(x, y, config["batch_size"], generator, order, fabric)

    def snapshot(done: int) -> None:
        if done % per_epoch == 0 and done // per_epoch in config["snapshots"]:
            kept[done // per_epoch] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    model.train()
    train_loop(
        step,
        steps=per_epoch * config["epochs"],
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=config["lr"]),
        kind="similarity.train",
        config=config,
        fabric=fabric,
        state={
            "generator": generator,
            "order": Saved(lambda: list(order), lambda value: order.__setitem__(slice(None), value)),
            "snapshots": Saved(
                lambda: {str(e): s for e, s in kept.items()},
                lambda value: kept.update({int(e): s for e, s in value.items()}),
            ),
        },
        checkpoint=checkpoint,
        every=per_epoch * 10,
        resume=resume,
        after_step=snapshot,
        desc=desc,
        show_progress=None if is_rank_zero(fabric) else False,
    )
    model.cpu()
    return kept
