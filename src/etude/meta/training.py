"""Training a set model on a family, minibatch by minibatch, resumable from atomic checkpoints.

Each step draws B distributions and, from each, n_x elements plus a disjoint context set
(`sample_batch`), and takes an Adam step on the mean over distributions of -ELBO (Wu et al.
2020, Eq. 4). All randomness after the model's initialization (batches, reparameterization
noise) comes from one generator seeded by `seed`, whose state is checkpointed (`etude.runtime.train_loop`), so a resumed run
ends with the same parameters as an uninterrupted one. With a Lightning ``fabric``, each of W
data-parallel ranks draws the same global batch and noise and trains on its slice of B / W sets
(`etude.runtime.distributed`); each rank's share of the loss is its sets' mean over W.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from etude.errors import BadInputError
from etude.meta.base import SetModel
from etude.meta.datasets import Batch, sample_batch
from etude.runtime import Objective, precision_of, shard, train_loop, world_size
from etude.validation import check_int

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["CONTEXT_MODES", "fit"]

CONTEXT_MODES = ("disjoint", "self", "none")
"""disjoint: a context set separate from x; self: x is its own context (NS); none: no context (VAE)."""


def fit(
    model: SetModel,
    data: torch.Tensor,
    steps: int,
    *,
    n_sets: int = 16,
    n_x: int = 20,
    n_context: int = 10,
    min_context: int | None = None,
    context: str = "disjoint",
    lr: float = 2e-4,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 200,
    resume: bool = False,
    show_progress: bool = False,
    desc: str = "",
    fabric: Fabric | None = None,
) -> list[float]:
    """Train `model` in place on `data` [M, P, D] for `steps` Adam steps; returns the loss per step.

    :param n_sets: B, distributions per minibatch. :param n_x: elements explained per distribution.
    :param n_context: context set size (variable in [min_context, n_context] when min_context is set).
    :param context: one of CONTEXT_MODES. :param seed: seeds the batch and noise generator.
    :param checkpoint: file written every `checkpoint_every` steps and at the end; with resume=True
        an existing one (from the same configuration) is loaded and training continues.
    :param fabric: a launched Lightning Fabric: train on its device at its precision; under DDP each
        rank takes its B / W sets of the same global batch (B divisible by W), every rank ends with the
        parameters (and losses) of one process on the global batch, only rank 0 writes the checkpoint,
        and a checkpoint resumes at any world size. The model ends on ``fabric.device``.
    """
    _check(model, data, steps, context, lr)
    config = {"model": type(model).__name__, "data": list(data.shape), "steps": steps, "n_sets": n_sets, "n_x": n_x}
    config |= {"n_context": n_context, "min_context": min_context, "context": context, "lr": float(lr), "seed": seed}
    if precision_of(fabric) != "32-true":  # a bf16 run resumes only at bf16; 32-bit checkpoints keep their config
        config["precision"] = precision_of(fabric)
    generator = torch.Generator().manual_seed(seed)
    step = _step(model, data, config, generator, fabric)
    model.train()
    result = train_loop(
        step,
        steps=steps,
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        module=Objective(model, model.loss),  # DDP and autocast act on its forward
        kind="meta.fit",
        config=config,
        fabric=fabric,
        state={"generator": generator},
        checkpoint=checkpoint,
        every=checkpoint_every,
        resume=resume,
        desc=desc or type(model).__name__,
        show_progress=show_progress,
    )
    model.eval()
    return result.losses


def _check(model: SetModel, data: torch.Tensor, steps: int, context: str, lr: float) -> None:
    """Raise ``BadInputError`` for data that do not fit the model, or a bad setting."""
    if not isinstance(data, torch.Tensor) or data.dim() != 3 or data.shape[-1] != model.x_dim:
        raise BadInputError(
            f"data must be a tensor [distributions, points, {model.x_dim}], got {getattr(data, 'shape', type(data).__name__)}"
        )
    if model.needs_index and data.shape[0] != model.n_distributions:
        raise BadInputError(
            f"data holds {data.shape[0]} distributions but the model has {model.n_distributions} decoders"
        )
    check_int("steps", steps, 0)
    if context not in CONTEXT_MODES:
        raise BadInputError(f"context must be one of {CONTEXT_MODES}, got {context!r}")
    if not lr > 0:
        raise BadInputError(f"lr must be positive, got {lr!r}")


def _step(
    model: SetModel, data: torch.Tensor, config: dict, generator: torch.Generator, fabric: Fabric | None
) -> Callable[[int, torch.nn.Module], torch.Tensor]:
    """The loop's step: a global batch of sets and its noise, this rank's share of the mean -ELBO of its sets."""
    disjoint, ranks = config["context"] == "disjoint", world_size(fabric)
    n_sets, n_x = config["n_sets"], config["n_x"]

    def step(t: int, objective: torch.nn.Module) -> torch.Tensor:
        n_context = config["n_context"] if disjoint else 1
        batch = sample_batch(data, n_sets, n_x, n_context, generator, config["min_context"] if disjoint else None)
        # the global batch's eps, drawn after the batch as the ELBO drew it before: one process is unchanged
        noise = model.noise(n_sets, n_x, generator, dtype=batch.x.dtype, device=batch.x.device)
        if fabric is not None:  # this rank's B / W sets of the global batch, and their noise
            fields = (batch.index, batch.x, batch.context, batch.context_mask)
            batch = Batch(*(shard(v, fabric).to(fabric.device) for v in fields))
            noise = {k: shard(v, fabric).to(fabric.device) for k, v in noise.items()}
        ctx, mask = (batch.context, batch.context_mask) if disjoint else (None, None)
        loss = objective(batch.x, ctx, batch.index, context_mask=mask, noise=noise)  # mean over this rank's sets
        return loss / ranks if ranks > 1 else loss  # this rank's share of the global batch's mean

    return step
