"""Training a set model on a family, minibatch by minibatch, resumable from atomic checkpoints.

Each step draws B distributions and, from each, n_x elements plus a disjoint context set
(`sample_batch`), and takes an Adam step on the mean over distributions of -ELBO (Wu et al.
2020, Eq. 4). All randomness after the model's initialization (batches, reparameterization
noise) comes from one generator seeded by `seed`, whose state is checkpointed, so a resumed run
ends with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from etude.errors import BadInputError
from etude.meta.base import SetModel
from etude.meta.datasets import sample_batch
from etude.runtime import load_checkpoint, progress, save_checkpoint
from etude.validation import check_int

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
) -> list[float]:
    """Train `model` in place on `data` [M, P, D] for `steps` Adam steps; returns the loss per step.

    :param n_sets: B, distributions per minibatch. :param n_x: elements explained per distribution.
    :param n_context: context set size (variable in [min_context, n_context] when min_context is set).
    :param context: one of CONTEXT_MODES. :param seed: seeds the batch and noise generator.
    :param checkpoint: file written every `checkpoint_every` steps and at the end; with resume=True
        an existing one (from the same configuration) is loaded and training continues.
    """
    if not isinstance(data, torch.Tensor) or data.dim() != 3 or data.shape[-1] != model.x_dim:
        raise BadInputError(f"data must be a tensor [distributions, points, {model.x_dim}], got {getattr(data, 'shape', type(data).__name__)}")
    if model.needs_index and data.shape[0] != model.n_distributions:
        raise BadInputError(f"data holds {data.shape[0]} distributions but the model has {model.n_distributions} decoders")
    check_int("steps", steps, 0)
    if context not in CONTEXT_MODES:
        raise BadInputError(f"context must be one of {CONTEXT_MODES}, got {context!r}")
    if not lr > 0:
        raise BadInputError(f"lr must be positive, got {lr!r}")
    config = {"model": type(model).__name__, "data": list(data.shape), "steps": steps, "n_sets": n_sets, "n_x": n_x,
              "n_context": n_context, "min_context": min_context, "context": context, "lr": float(lr), "seed": seed}
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    start = 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, expect={"kind": "meta.fit", "config": config},
                                like={"model": model.state_dict(), "generator": generator.get_state(), "step": int})
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        losses, start = list(state["losses"]), int(state["step"])
    model.train()
    bar = progress(range(start, steps), total=steps - start, desc=desc or type(model).__name__, disable=not show_progress)
    for step in bar:
        batch = sample_batch(data, n_sets, n_x, n_context if context == "disjoint" else 1, generator,
                             min_context if context == "disjoint" else None)
        ctx = batch.context if context == "disjoint" else None
        mask = batch.context_mask if context == "disjoint" else None
        loss = model.loss(batch.x, ctx, batch.index, context_mask=mask, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        done = step + 1
        if checkpoint is not None and (done % checkpoint_every == 0 or done == steps):
            save_checkpoint(checkpoint, {"kind": "meta.fit", "config": config, "step": done, "losses": losses,
                                         "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                         "generator": generator.get_state()})
    model.eval()
    return losses
