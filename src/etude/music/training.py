"""Training data and loops for the Transformer autoencoder (Choi et al., arXiv:1912.05537, Sec. 4).

Examples are time-window crops of a piece: the performance tokens (the decoder's target *and*,
for the autoencoder, the encoder's input: "input = target crop") and the melody of the same
window. ``fit`` is a plain PyTorch loop with atomic checkpoints and exact resume;
``nll`` is the held-out negative log-likelihood in nats per token.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from etude.errors import BadInputError, CheckpointError
from etude.music.autoencoder import LAYOUT, TransformerAutoencoder
from etude.music.events import PerformanceEncoding
from etude.music.melody import MelodyEncoding
from etude.music.performance import Performance
from etude.music.styles import augment as augment_performances
from etude.runtime import (
    is_rank_zero,
    load_checkpoint,
    load_on_rank_zero,
    progress,
    rank,
    save_checkpoint,
    shard,
    sum_over_ranks,
    world_size,
)

__all__ = ["Crops", "crop", "fit", "load_model", "make_crops", "nll", "nll_per_crop", "save_model"]

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from etude.music.stream import StreamCrops

PAD = PerformanceEncoding.PAD


def crop(performance: Performance, start: float, seconds: float) -> Performance:
    """Notes starting in ``[start, start + seconds)``, shifted to time 0 and cut at the window's end."""
    keep = (performance.start >= start) & (performance.start < start + seconds)
    end = np.minimum(performance.end[keep], start + seconds) - start
    begin = performance.start[keep] - start
    return Performance.from_arrays(
        performance.pitch[keep], performance.velocity[keep], begin, np.maximum(end, begin + 0.01)
    )


@dataclass
class Crops:
    """Padded crops: ``performance [N, Lp]`` ids (no BOS), ``melody [N, Lm]`` ids, PAD = 0."""

    performance: Tensor
    melody: Tensor

    def __len__(self) -> int:
        return self.performance.shape[0]

    def select(self, index: Tensor) -> Crops:
        return Crops(self.performance[index], self.melody[index])

    def to(self, device: torch.device | str) -> Crops:
        """These crops on ``device`` (the same object when they are there already)."""
        if self.performance.device == torch.device(device):
            return self
        return Crops(self.performance.to(device), self.melody.to(device))


def _pad(rows: list[np.ndarray], length: int) -> Tensor:
    out = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : min(len(row), length)] = torch.from_numpy(row[:length])
    return out


def make_crops(
    pieces: list, *, seconds: float, max_tokens: int, per_piece: int, seed: int, augment: bool = False
) -> Crops:
    """``per_piece`` random windows of ``seconds`` from each piece (``piece.performance`` and ``piece.melody``).

    Performance ids are cut to ``max_tokens - 1`` (room for the decoder's BOS), melody frames to
    ``max_tokens``. With ``augment``, each crop is transposed by -3..+3 and stretched by 0.95-1.05.
    """
    if not pieces:
        raise BadInputError("make_crops needs at least one piece")
    rng = np.random.default_rng(seed)
    enc, menc = PerformanceEncoding(), MelodyEncoding()
    perf_rows, mel_rows = [], []
    for piece in pieces:
        for _ in range(per_piece):
            start = float(rng.uniform(0.0, max(piece.performance.duration - seconds, 0.0)))
            p, m = crop(piece.performance, start, seconds), crop(piece.melody, start, seconds)
            if len(p) == 0:
                continue
            if augment:
                p, m = augment_performances(p, m, rng=rng, pitch_range=(21, 108))
            perf_rows.append(enc.encode(p))
            mel_rows.append(menc.encode(m) if len(m) else np.array([menc.NO_EVENT]))
    return Crops(_pad(perf_rows, max_tokens - 1), _pad(mel_rows, max_tokens))


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
    net = model  # the plain module: its state dict is the checkpoint's, whatever the world size
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98))
    warm = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(steps - warm, 1))),
    )
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    expect = {"kind": "tae", "layout": LAYOUT, "steps": steps, "seed": seed, "desc": desc}
    path = None if checkpoint is None else Path(checkpoint)
    if fabric is not None:  # before loading, so that the optimizer's state lands on the fabric's device
        model, optimizer = fabric.setup(model, optimizer)
        data = data.to(fabric.device)
    if resume and path is not None:
        state = load_on_rank_zero(
            path,
            fabric,
            expect=expect,
            like={"model": net.state_dict(), "generator": generator.get_state(), "torch_rng": torch.get_rng_state()},
        )
        if state is not None:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            losses = list(state["losses"])

    def save() -> None:
        if path is not None and is_rank_zero(fabric):
            save_checkpoint(
                path,
                {
                    **expect,
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "losses": losses,
                },
            )

    ranks = world_size(fabric)
    quiet = not is_rank_zero(fabric) or (show_progress is not None and not show_progress)
    model.train()
    for step in progress(
        range(len(losses), steps), total=steps - len(losses), desc=desc, disable=True if quiet else None
    ):
        index = torch.randint(len(data), (batch_size,), generator=generator)  # the global batch, same on every rank
        if ranks > 1:  # each rank its own dropout masks, fixed by (seed, step, rank) so that resume repeats them
            torch.manual_seed(zlib.crc32(f"{seed}/{step}/{rank(fabric)}".encode()))
        if fabric is None:
            loss = _batch_loss(model, data.select(index))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        else:
            # mean over the global batch's non-PAD tokens: sum over this shard / N; DDP averages the
            # ranks' gradients, so each rank's loss is scaled by W to make that average the global one
            batch = data.select(index)
            tokens = int((batch.performance != PAD).sum())
            total = _batch_loss(
                model, batch.select(shard(torch.arange(batch_size, device=index.device), fabric)), reduction="sum"
            )
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(total * (ranks / max(tokens, 1)))
            fabric.clip_gradients(model, optimizer, max_norm=1.0, error_if_nonfinite=False)  # on the averaged gradient
            loss = sum_over_ranks(total, fabric) / max(tokens, 1)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % every == 0 and step + 1 < steps:
            save()
    save()
    return losses


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
