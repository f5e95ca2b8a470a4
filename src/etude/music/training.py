"""Training and evaluation of the Transformer autoencoder (Choi et al., arXiv:1912.05537, Sec. 4).

Examples are crops (``etude.music.crops``, re-exported here). ``fit`` trains through the runtime's one
loop (``etude.runtime.train_loop``: atomic checkpoints, exact resume, DDP); ``nll`` is the held-out
negative log-likelihood in nats per token.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from etude.errors import BadInputError, CheckpointError
from etude.music.autoencoder import LAYOUT, TransformerAutoencoder
from etude.music.crops import Crops, crop, make_crops
from etude.music.events import PerformanceEncoding
from etude.music.stream import StreamCrops
from etude.runtime import GlobalRng, load_checkpoint, rank, save_checkpoint, shard, train_loop, world_size

__all__ = ["Crops", "crop", "fit", "load_model", "make_crops", "nll", "nll_per_crop", "save_model"]

if TYPE_CHECKING:
    from lightning_fabric import Fabric

PAD = PerformanceEncoding.PAD


def _batch_loss(model: TransformerAutoencoder, batch: Crops, reduction: str = "mean") -> Tensor:
    """Cross-entropy of the target crop given the conditioning (nats; PAD targets ignored)."""
    target = batch.performance
    bos = torch.full_like(target[:, :1], model.cfg.vocab_size - 1)
    inputs = torch.cat([bos, target[:, :-1]], dim=1)
    logits = model(
        inputs,
        performance=target if model.uses_performance else None,
        melody=batch.melody if model.uses_melody else None,
        performance_padding=target == PAD,
        melody_padding=batch.melody == PAD,
    )
    return nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD, reduction=reduction)


@torch.no_grad()
def _token_nll(model: TransformerAutoencoder, data: Crops | StreamCrops, batch_size: int) -> tuple[Tensor, Tensor]:
    """Summed NLL (nats) and non-PAD target count per crop: ``([N], [N])``."""
    was = model.training
    model.eval()
    sums, counts = [], []
    for i in range(0, len(data), batch_size):
        batch = data.select(torch.arange(i, min(i + batch_size, len(data))))
        per_token = _batch_loss(model, batch, reduction="none")  # [B, L], 0 at PAD targets
        sums.append(per_token.double().sum(1).cpu())
        counts.append((batch.performance != PAD).sum(1).cpu())
    model.train(was)
    if not sums:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.long)
    return torch.cat(sums), torch.cat(counts)


def nll(model: TransformerAutoencoder, data: Crops | StreamCrops, batch_size: int = 32) -> float:
    """Mean negative log-likelihood of the non-PAD target tokens, in nats per token."""
    sums, counts = _token_nll(model, data, batch_size)
    return float(sums.sum()) / max(int(counts.sum()), 1)


def nll_per_crop(model: TransformerAutoencoder, data: Crops | StreamCrops, batch_size: int = 32) -> np.ndarray:
    """Each crop's mean NLL over its non-PAD target tokens, nats per token: ``[N]`` (NaN for an empty crop)."""
    sums, counts = _token_nll(model, data, batch_size)
    return np.where(counts.numpy() > 0, sums.numpy() / np.maximum(counts.numpy(), 1), np.nan)


def fit(
    model: TransformerAutoencoder,
    data: Crops | StreamCrops,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    every: int = 100,
    show_progress: bool | None = None,
    desc: str = "training",
    fabric: Fabric | None = None,
) -> list[float]:
    """Adam with linear warm-up (10% of steps) and cosine decay; returns the loss per step.

    ``data`` is ``Crops`` or any source with ``len``, ``select(index) -> Crops`` and ``to(device)``
    (``etude.music.stream.StreamCrops`` slices crops out of a token cache on demand).

    With ``checkpoint`` the model, optimizer, sampler state and losses are saved atomically every
    ``every`` steps and at the end; ``resume`` continues from it to the same result as an
    uninterrupted run. With a ``fabric`` (from ``Distributed.make_fabric``, launched) the model
    trains on ``fabric.device`` at its precision; under DDP each of the W ranks takes its shard of
    the same global batch of ``batch_size`` crops and ends with the parameters (and losses) of one
    process on that batch (exactly so without dropout: each rank draws its own masks), only rank 0
    writes the checkpoint, and it resumes at any world size.
    """
    if steps < 0 or batch_size < 1:
        raise BadInputError(f"steps must be >= 0 and batch_size >= 1, got {steps} and {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    data = data if fabric is None else data.to(fabric.device)
    model.train()
    return train_loop(
        _crop_step(data, batch_size, generator, seed, fabric),
        steps=steps,
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98)),
        kind="tae",
        config={"layout": LAYOUT, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "desc": desc},
        fabric=fabric,
        state={"generator": generator, "torch_rng": GlobalRng()},
        checkpoint=checkpoint,
        every=every,
        resume=resume,
        schedule=_warmup_cosine(steps),
        clip=1.0,
        desc=desc,
        show_progress=show_progress,
    ).losses


def _warmup_cosine(steps: int) -> Callable[[int], float]:
    """The learning-rate factor of step s: linear warm-up over the first 10% of ``steps``, then cosine decay to 0."""
    warm = max(1, steps // 10)
    return lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(steps - warm, 1)))


def _crop_step(
    data: Crops | StreamCrops, batch_size: int, generator: torch.Generator, seed: int, fabric: Fabric | None
) -> Callable[[int, nn.Module], Tensor]:
    """``train_loop``'s step: the token-mean loss of one global batch of ``batch_size`` crops drawn from ``generator``.

    Under DDP each rank takes its shard of that batch and returns its sum over the global batch's non-PAD count,
    with its own dropout masks seeded by (seed, step, rank) so that a resume repeats them.
    """
    ranks = world_size(fabric)

    def step(t: int, module: nn.Module) -> Tensor:
        index = torch.randint(len(data), (batch_size,), generator=generator)  # the global batch, same on every rank
        if ranks > 1:  # each rank its own dropout masks, fixed by (seed, step, rank) so that resume repeats them
            torch.manual_seed(zlib.crc32(f"{seed}/{t}/{rank(fabric)}".encode()))
        batch = data.select(index)
        if fabric is None:
            return _batch_loss(module, batch)  # type: ignore[arg-type]
        # this shard's share of the mean over the global batch's non-PAD tokens: its sum over their count
        tokens = int((batch.performance != PAD).sum())
        part = batch.select(shard(torch.arange(batch_size, device=index.device), fabric))
        return _batch_loss(module, part, reduction="sum") / max(tokens, 1)  # type: ignore[arg-type]

    return step


def save_model(path: str | Path, model: TransformerAutoencoder, **extra) -> None:
    """Write a trained model (sizes, conditioning and weights) atomically to ``path``."""
    save_checkpoint(
        path,
        {
            "kind": "tae-model",
            "layout": LAYOUT,
            "config": model.cfg.as_dict(),
            "conditioning": model.conditioning,
            "combine": model.combine,
            "pool": model.pool,
            "encoder_layers": _encoder_layers(model),
            "model": model.state_dict(),
            **extra,
        },
    )


def _encoder_layers(model: TransformerAutoencoder) -> int:
    for name in ("performance_encoder", "melody_encoder"):
        if hasattr(model, name):
            return len(getattr(model, name).layers)
    return model.cfg.layers


def load_model(path: str | Path) -> TransformerAutoencoder:
    """A model written by ``save_model``, in eval mode.

    :raises CheckpointError: a bad file, or one of an older architecture (``LAYOUT``: the
        encoders gained positions and concat its separator, so old weights would mean another model).
    """
    from etude.music.transformer import TransformerConfig

    state = load_checkpoint(path, expect={"kind": "tae-model"})
    layout = state.get("layout", 1)
    if layout != LAYOUT:
        raise CheckpointError(
            f"checkpoint {path} holds a model of layout {layout}, this etude reads layout {LAYOUT} "
            "(encoders with positions, concat = melody, separator, style); retrain it"
        )
    try:
        model = TransformerAutoencoder(
            TransformerConfig(**state["config"]),
            state["conditioning"],
            state["combine"],
            state["pool"],
            encoder_layers=state["encoder_layers"],
        )
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, ValueError, RuntimeError, BadInputError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"checkpoint {path} does not hold a valid model ({reason}); retrain it") from error
    return model.eval()
