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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from etude.exchangeable.bruno import Bruno
from etude.flows import dequantize
from etude.runtime import load_checkpoint, progress, save_checkpoint
from etude.validation import check_int, check_number

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
        return {"loss": list(self.loss), "val_steps": list(self.val_steps), "val_loss": list(self.val_loss),
                "best_step": self.best_step, "best_val": self.best_val}


def train_bruno(model: Bruno, sample_batch: Callable[[torch.Generator], Tensor], steps: int, *,
                lr: float = 1e-3, weight_decay: float = 0.0, warmup: int = 100, process_scale: float = 0.1,
                process_lr_mult: float = 1.0, val: Tensor | None = None, eval_every: int = 50, seed: int = 0,
                checkpoint: str | Path | None = None, checkpoint_every: int = 100, resume: bool = False,
                show_progress: bool = False, desc: str = "bruno") -> TrainLog:
    """Train ``model`` in place with AdamW on batches ``sample_batch(generator)`` [B, n, *shape] of
    integer grey levels (dequantized here with the same CPU generator, then moved to the model's device).

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
    process_params = list(model.process.parameters())
    ids = {id(p) for p in process_params}
    flow_params = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": process_params, "weight_decay": 0.0, "lr": lr * process_lr_mult}]
    if flow_params:
        groups.append({"params": flow_params, "weight_decay": weight_decay})
    opt = torch.optim.AdamW(groups, lr=lr)
    device = next(model.parameters()).device
    val = val.to(device) if val is not None else None
    generator = torch.Generator().manual_seed(seed)
    log, best_state, start = TrainLog(), None, 0
    config = {"steps": steps, "lr": lr, "weight_decay": weight_decay, "warmup": warmup,
              "process_scale": process_scale, "process_lr_mult": float(process_lr_mult), "eval_every": eval_every, "seed": seed,
              "params": sum(p.numel() for p in model.parameters())}
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, expect={"kind": "bruno.train", "config": config},
                                like={"model": model.state_dict(), "generator": generator.get_state(), "step": int})
        model.load_state_dict(state["model"])  # load_state_dict copies onto the model's device
        opt.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        log = TrainLog(**state["log"])
        best_state, start = state["best"], int(state["step"])

    def evaluate(step: int) -> None:
        nonlocal best_state
        assert val is not None  # called only with a validation batch
        model.eval()
        with torch.no_grad():
            v = float(model.loss(val))
        model.train()
        log.val_steps.append(step)
        log.val_loss.append(v)
        if v < log.best_val:
            log.best_val, log.best_step = v, step
            best_state = copy.deepcopy(model.state_dict())

    if val is not None and start == 0:
        evaluate(0)
    bar = progress(range(start, steps), total=steps - start, desc=desc, disable=not show_progress)
    for step in bar:
        x = dequantize(sample_batch(generator), generator).to(device)
        loss = model.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        factor = process_grad_scale(step, warmup, process_scale)
        for p in process_params:
            if p.grad is not None:
                p.grad.mul_(factor)
        opt.step()
        log.loss.append(loss.item())
        done = step + 1
        if val is not None and (done % eval_every == 0 or done == steps):
            evaluate(done)
        if checkpoint is not None and (done % checkpoint_every == 0 or done == steps):
            save_checkpoint(checkpoint, {"kind": "bruno.train", "config": config, "step": done,
                                         "model": model.state_dict(), "optimizer": opt.state_dict(),
                                         "generator": generator.get_state(), "log": log.state(),
                                         "best": best_state})
    if best_state is not None:
        model.load_state_dict(best_state)
    return log
