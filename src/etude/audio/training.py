"""Training and evaluation loops of the ADA levels and priors: crops, Adam, checkpoints, held-out metrics.

Training runs through the runtime's one loop (``etude.runtime.train_loop``); a checkpoint holds the model,
the optimizer, the step and the batch generator's state, so a resumed run reaches the same weights as an
uninterrupted one. With a Lightning ``fabric``,
each of W data-parallel ranks draws the same global batch of crops and trains on its B / W of them
(`etude.runtime.distributed`): the losses are means over the shard, and the batch statistics of the
bottlenecks are the global batch's (`etude.runtime.global_batch`), so W ranks equal one process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from etude.audio.bottlenecks import code_entropy, codebook_usage
from etude.audio.mulaw import mulaw_encode
from etude.errors import BadInputError
from etude.runtime import Objective, global_batch, shard, train_loop, world_size

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = [
    "to_classes",
    "random_crops",
    "fixed_crops",
    "train_model",
    "evaluate_level",
    "evaluate_prior",
    "encode_pieces",
    "fit_hierarchy",
]


def to_classes(pieces: list[np.ndarray], channels: int = 256) -> list[torch.Tensor]:
    """Float audio pieces in [-1, 1] to mu-law class sequences."""
    return [mulaw_encode(torch.from_numpy(np.clip(p, -1, 1)).float(), channels) for p in pieces]


def random_crops(pieces: list[torch.Tensor], batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """A batch [batch, length] of crops at random pieces and offsets (pieces shorter than length are skipped)."""
    usable = [p for p in pieces if len(p) >= length]
    if not usable:
        raise BadInputError(f"no piece is at least {length} symbols long (longest {max(map(len, pieces), default=0)})")
    which = torch.randint(len(usable), (batch,), generator=generator).tolist()
    rows = []
    for i in which:
        start = int(torch.randint(len(usable[i]) - length + 1, (1,), generator=generator))
        rows.append(usable[i][start : start + length])
    return torch.stack(rows)


def fixed_crops(pieces: list[torch.Tensor], length: int, limit: int) -> torch.Tensor:
    """Up to `limit` non-overlapping crops [N, length], taken round-robin over pieces (deterministic)."""
    per_piece = [list(p[: len(p) // length * length].reshape(-1, length)) for p in pieces]
    rows: list[torch.Tensor] = []
    while len(rows) < limit and any(per_piece):
        for crops in per_piece:
            if crops and len(rows) < limit:
                rows.append(crops.pop(0))
    if not rows:
        raise BadInputError(f"no held-out piece is at least {length} symbols long")
    return torch.stack(rows)


def train_model(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    pieces: list[torch.Tensor],
    *,
    steps: int,
    batch: int,
    length: int,
    lr: float,
    seed: int,
    checkpoint: Path | None = None,
    resume: bool = False,
    tag: str = "",
    checkpoint_every: int = 100,
    desc: str = "train",
    final_lr: float = 1.0,
    fabric: Fabric | None = None,
) -> list[float]:
    """Adam on loss_fn(random crop batch) for `steps` steps; returns the loss curve.

    The learning rate falls linearly from lr to final_lr * lr over the run (1.0: constant); it is a
    function of the step alone, so a resumed run follows the same schedule.

    With `checkpoint`, the state is saved every `checkpoint_every` steps and at the end; with `resume`
    an existing checkpoint of the same `tag` and settings continues the run. A NaN or infinite loss
    stops the run with a ``BadInputError``. With a launched `fabric` the model
    trains on its device at its precision; under DDP each rank takes its batch / W crops of the same
    global batch (`loss_fn` must be a mean over the crops, batch statistics taken with
    `etude.runtime.global_batch`), ends with the parameters of one process on the global batch, only
    rank 0 writes the checkpoint, and a checkpoint resumes at any world size.
    """
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device if fabric is None else fabric.device
    step = _crop_step(pieces, batch, length, generator, device, fabric)
    model.train()
    result = train_loop(
        step,
        steps=steps,
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        module=Objective(model, loss_fn),  # DDP and autocast act on its forward
        kind="audio.train",
        # no step count: a run may be extended (at a constant learning rate, the same as a longer run)
        config={"tag": tag, "batch": batch, "length": length, "lr": lr, "seed": seed, "final_lr": final_lr},
        fabric=fabric,
        state={"generator": generator},
        checkpoint=checkpoint,
        every=checkpoint_every,
        resume=resume,
        schedule=lambda t: 1 - (1 - final_lr) * t / max(1, steps),
        finite=True,
        desc=desc,
    )
    model.eval()
    return result.losses


def _crop_step(
    pieces: list[torch.Tensor],
    batch: int,
    length: int,
    generator: torch.Generator,
    device: torch.device,
    fabric: Fabric | None,
) -> Callable[[int, nn.Module], torch.Tensor]:
    """``train_loop``'s step: the objective's mean over this rank's share of one global batch of random crops.

    Every rank draws the same global batch from ``generator``, keeps its batch / W crops, and returns its
    loss / W, so the gradients summed over ranks are those of the global batch's mean.
    """
    ranks = world_size(fabric)

    def step(t: int, objective: nn.Module) -> torch.Tensor:
        x = random_crops(pieces, batch, length, generator)  # the global batch, the same on every rank
        if fabric is not None:
            x = shard(x, fabric)
        with global_batch(fabric):
            loss = objective(x.to(device))  # the mean over this rank's crops
        return loss / ranks if ranks > 1 else loss  # this rank's share of the global batch's mean

    return step


@torch.no_grad()
def evaluate_level(level, crops: torch.Tensor, chunk: int = 16) -> dict[str, float]:
    """Held-out decoder NLL (bits/symbol), codes in use and code entropy (bits) of one level on crops [N, T]."""
    level.eval()
    device = next(level.parameters()).device
    nll, indices = [], []
    for part in crops.split(chunk):
        _, bits, q = level.losses(part.to(device))
        nll.append(float(bits) * len(part))
        if q is not None:
            indices.append(q.indices.cpu())
    out = {"nll_bits": sum(nll) / len(crops)}
    if indices:
        codes = torch.cat(indices)
        out.update(
            usage=codebook_usage(codes, level.config.codes), entropy_bits=code_entropy(codes, level.config.codes)
        )
    return out


@torch.no_grad()
def evaluate_prior(prior, crops: torch.Tensor, chunk: int = 16) -> float:
    """Held-out NLL of a WaveNet prior in bits per code."""
    prior.eval()
    device = next(prior.parameters()).device
    return sum(float(prior.nll_bits(part.to(device))) * len(part) for part in crops.split(chunk)) / len(crops)


@torch.no_grad()
def encode_pieces(level, pieces: list[torch.Tensor], chunk: int = 1 << 15) -> list[torch.Tensor]:
    """Code indices [T / hop] of every whole piece (each cut to a multiple of hop), encoded in chunks."""
    level.eval()
    device = next(level.parameters()).device
    hop = level.config.hop
    step = max(hop, chunk // hop * hop)
    out = []
    for piece in pieces:
        piece = piece[: len(piece) // hop * hop]
        parts = [
            level.encode(piece[i : i + step].unsqueeze(0).to(device)).indices[0].cpu()
            for i in range(0, len(piece), step)
        ]
        out.append(torch.cat(parts) if parts else piece[:0])
    return out


def bits(value: float) -> float:
    """Nats to bits."""
    return value / math.log(2)


def fit_hierarchy(
    model,
    pieces: list[torch.Tensor],
    *,
    steps: int | Sequence[int],
    prior_steps: int,
    batch: int,
    length: int | Sequence[int],
    prior_length: int,
    lr: float,
    seed: int,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    tag: str = "",
    checkpoint_every: int = 100,
    final_lr: float = 1.0,
    fabric: Fabric | None = None,
) -> dict[str, list[float]]:
    """Train a `Hierarchy` level by level (each on the codes of the one below), then its prior.

    :param pieces: symbol sequences of the bottom level (mu-law classes).
    :param steps: Adam steps of every level, or one count per level.
    :param length: crop length in symbols of every level, or one per level (each cut to a multiple of its hop).
    :param final_lr: learning-rate fraction reached at the end of every stage (linear decay; 1: constant).
    :param tag: checkpoint tag prefix (a hash of the run's settings), so a resume never mixes runs.
    :param fabric: train every stage through it (`train_model`); every rank encodes every piece.
    :returns: the loss curve of every stage.
    """
    steps, lengths = _per_level(steps, length, len(model.levels))
    common = {"batch": batch, "lr": lr, "resume": resume, "checkpoint_every": checkpoint_every, "final_lr": final_lr}

    def stage(name: str, desc: str, offset: int) -> dict[str, Any]:  # train_model's options of one stage
        where = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{name}.pt"
        return {"seed": seed + offset, "checkpoint": where, "tag": tag + name, "desc": desc, "fabric": fabric, **common}

    curves = {}
    current = pieces
    for i, level in enumerate(model.autoencoders):
        hop = level.config.hop
        level.decoder.fit_first(current)
        crop = max(hop, lengths[i] // hop * hop)
        curves[f"level{i}"] = train_model(
            level, level.loss, current, steps=steps[i], length=crop, **stage(f"level{i}", f"level {i}", i)
        )
        current = encode_pieces(level, current)
    model.prior.fit_first(current)
    curves["prior"] = train_model(
        model.prior,
        model.prior.nll_bits,
        current,
        steps=prior_steps,
        length=prior_length,
        **stage("prior", "prior", 100),
    )
    return curves


def _per_level(steps: int | Sequence[int], length: int | Sequence[int], n: int) -> tuple[list[int], list[int]]:
    """``steps`` and ``length`` as one value per level of ``n``; a list of another length is refused."""
    steps = [steps] * n if isinstance(steps, int) else list(steps)
    lengths = [length] * n if isinstance(length, int) else list(length)
    if len(steps) != n or len(lengths) != n:
        raise BadInputError(f"steps and length need one value per level ({n}), got {steps} and {lengths}")
    return steps, lengths
