"""Training BRUNO on same-class sequences, with the paper's schedule for the process parameters.

Korshunova et al., NeurIPS 2018 (arXiv:1802.07535), Sec. 5 and the official code: the loss is the
mean over all positions of -log p(x_n | x_<n); the gradients of the process parameters (a, b, c)
are multiplied by 0 for the first ``warmup`` steps (100) and by ``process_scale`` (0.1) afterwards.
Note: with Adam a constant gradient scale is almost inert (Adam normalises it away); the warm-up
freeze is what matters. Adam moves each process logit by about one learning rate per step, so in a
few hundred steps (the official code runs 50k-200k RMSProp steps) the correlation rho/v hardly
leaves its initial 0.1: ``process_lr_mult`` gives the process parameters their own learning rate,
``lr * process_lr_mult``. Early stopping keeps the parameters with the best validation loss.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from etude.exchangeable.bruno import Bruno
from etude.flows import dequantize
from etude.runtime import (
    is_rank_zero,
    load_on_rank_zero,
    precision_of,
    progress,
    save_checkpoint,
    shard,
    sum_over_ranks,
    world_size,
)
from etude.validation import check_int, check_number

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["TrainLog", "process_grad_scale", "train_bruno"]


def process_grad_scale(step: int, warmup: int = 100, scale: float = 0.1) -> float:
    """Factor on the process parameters' gradients at ``step`` (0-based): 0 before ``warmup``, then ``scale``."""
    return 0.0 if step < warmup else scale


@dataclass
class TrainLog:
    """Loss per step (nats/dim), validation loss every ``eval_every`` steps, and the kept step."""

    loss: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_step: int = 0
    best_val: float = float("inf")

    def state(self) -> dict:
        return {
            "loss": list(self.loss),
            "val_steps": list(self.val_steps),
            "val_loss": list(self.val_loss),
            "best_step": self.best_step,
            "best_val": self.best_val,
        }


def train_bruno(
    model: Bruno,
    sample_batch: Callable[[torch.Generator], Tensor],
    steps: int,
    *,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    warmup: int = 100,
    process_scale: float = 0.1,
    process_lr_mult: float = 1.0,
    val: Tensor | None = None,
    eval_every: int = 50,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    show_progress: bool = False,
    desc: str = "bruno",
    fabric: Fabric | None = None,
) -> TrainLog:
    """Train ``model`` in place with AdamW on batches ``sample_batch(generator)`` [B, n, *shape] of
    integer grey levels (dequantized here with the same CPU generator, then moved to the model's device).

    With a ``fabric`` (launched, from ``Distributed``) the model trains on ``fabric.device`` at its
    precision; under DDP every rank draws the same global batch and its dequantization noise, and
    trains on its contiguous share of the B sequences, so the W ranks end with the parameters of one
    process on the global batch; only rank 0 writes the checkpoint, which resumes at any world size.

    :param process_lr_mult: the process parameters' learning rate is ``lr * process_lr_mult``.
    :param val: a fixed, already dequantized validation batch [B, n, *shape]; when given, the
        parameters with the lowest validation loss (checked every ``eval_every`` steps) are kept.
    :param checkpoint: written atomically every ``checkpoint_every`` steps; ``resume=True`` continues
        from it to the same result as an uninterrupted run.
    """
    check_int("steps", steps, 0)
    for name, value in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        check_int(name, value, 1)
    check_number("process_lr_mult", process_lr_mult, 0, low_open=True)
    net = model  # the plain module: its state dict is the checkpoint's, whatever the world size
    process_params = list(model.process.parameters())
    ids = {id(p) for p in process_params}
    flow_params = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": process_params, "weight_decay": 0.0, "lr": lr * process_lr_mult}]
    if flow_params:
        groups.append({"params": flow_params, "weight_decay": weight_decay})
    opt = torch.optim.AdamW(groups, lr=lr)
    config: dict[str, Any] = {
        "steps": steps,
        "lr": lr,
        "weight_decay": weight_decay,
        "warmup": warmup,
        "process_scale": process_scale,
        "process_lr_mult": float(process_lr_mult),
        "eval_every": eval_every,
        "seed": seed,
        "params": sum(p.numel() for p in model.parameters()),
    }
    if fabric is not None:  # before loading, so that the optimizer's state lands on the fabric's device
        model, opt = fabric.setup(model, opt)  # the param groups (and their learning rates) are kept
        precision = precision_of(fabric)
        if precision != "32-true":
            config["precision"] = precision  # 32-bit checkpoints keep their former configuration
    device = next(net.parameters()).device
    val = val.to(device) if val is not None else None
    generator = torch.Generator().manual_seed(seed)
    log, best_state, start = TrainLog(), None, 0
    if checkpoint is not None and resume:
        state = load_on_rank_zero(
            checkpoint,
            fabric,
            expect={"kind": "bruno.train", "config": config},
            like={"model": net.state_dict(), "generator": generator.get_state(), "step": int},
        )
        if state is not None:
            net.load_state_dict(state["model"])  # load_state_dict copies onto the model's device
            opt.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            log = TrainLog(**state["log"])
            best_state, start = state["best"], int(state["step"])

    def evaluate(step: int) -> None:  # on every rank, the same parameters and batch: the same choice
        nonlocal best_state
        assert val is not None  # called only with a validation batch
        net.eval()
        with torch.no_grad():
            v = float(net.loss(val))
        net.train()
        log.val_steps.append(step)
        log.val_loss.append(v)
        if v < log.best_val:
            log.best_val, log.best_step = v, step
            best_state = copy.deepcopy(net.state_dict())

    if val is not None and start == 0:
        evaluate(0)
    ranks = world_size(fabric)
    bar = progress(
        range(start, steps), total=steps - start, desc=desc, disable=not show_progress or not is_rank_zero(fabric)
    )
    for step in bar:
        x = dequantize(sample_batch(generator), generator)  # the global batch and its noise, the same on every rank
        opt.zero_grad(set_to_none=True)
        if fabric is None:
            loss = net.loss(x.to(device))
            loss.backward()
        else:
            # mean over the global batch's B x n positions of -log p / D: this shard's sum over that count;
            # DDP averages the ranks' gradients, so each rank's part is scaled by W
            count = x.shape[0] * x.shape[1] * net.dim
            part = shard(x, fabric).to(device)
            total = -model(part).sum()  # log p(x_i | x_<i) through the wrapper: DDP's gradient sync, autocast
            fabric.backward(total * (ranks / count))
            loss = sum_over_ranks(total, fabric) / count
        factor = process_grad_scale(step, warmup, process_scale)
        for p in process_params:
            if p.grad is not None:
                p.grad.mul_(factor)
        opt.step()
        log.loss.append(loss.item())
        done = step + 1
        if val is not None and (done % eval_every == 0 or done == steps):
            evaluate(done)
        if checkpoint is not None and (done % checkpoint_every == 0 or done == steps) and is_rank_zero(fabric):
            save_checkpoint(
                checkpoint,
                {
                    "kind": "bruno.train",
                    "config": config,
                    "step": done,
                    "model": net.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": generator.get_state(),
                    "log": log.state(),
                    "best": best_state,
                },
            )
    if best_state is not None:
        net.load_state_dict(best_state)
    return log
