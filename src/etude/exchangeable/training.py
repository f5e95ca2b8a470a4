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

from etude.errors import BadInputError
from etude.exchangeable.bruno import Bruno
from etude.flows import dequantize
from etude.runtime import Saved, precision_of, shard, train_loop
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
    _check_settings(steps, eval_every, checkpoint_every, process_lr_mult)
    groups = _param_groups(model, lr, weight_decay, process_lr_mult)
    config: dict[str, Any] = {"steps": steps, "lr": lr, "weight_decay": weight_decay, "warmup": warmup}
    config |= {"process_scale": process_scale, "process_lr_mult": float(process_lr_mult), "eval_every": eval_every}
    config |= _size_and_precision(model, seed, fabric)
    run = _Run(model, sample_batch, config, val, fabric, desc)
    result = train_loop(
        run.step,
        steps=steps,
        model=model,
        optimizer=torch.optim.AdamW(groups, lr=lr),  # Fabric's set-up keeps the groups and their learning rates
        kind="bruno.train",
        config=config,
        fabric=fabric,
        checkpoint=checkpoint,
        every=checkpoint_every,
        resume=resume,
        finite=True,  # a diverged flow's NaN would surface later as a misleading statistic's error
        desc=desc,
        **run.hooks(),
        show_progress=show_progress,
    )
    run.log.loss = result.losses
    if run.best is not None:
        model.load_state_dict(run.best)
    return run.log


def _check_settings(steps: int, eval_every: int, checkpoint_every: int, process_lr_mult: float) -> None:
    check_int("steps", steps, 0)
    for name, value in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
        check_int(name, value, 1)
    check_number("process_lr_mult", process_lr_mult, 0, low_open=True)


def _size_and_precision(model: Bruno, seed: int, fabric: Fabric | None) -> dict[str, Any]:
    """The seed, the parameter count and (other than 32-bit) the precision, as the checkpoint's config records them."""
    config: dict[str, Any] = {"seed": seed, "params": sum(p.numel() for p in model.parameters())}
    if precision_of(fabric) != "32-true":
        config["precision"] = precision_of(fabric)  # 32-bit checkpoints keep their former configuration
    return config


def _param_groups(model: Bruno, lr: float, weight_decay: float, process_lr_mult: float) -> list[dict]:
    """AdamW's groups: the process parameters (no weight decay, ``lr * process_lr_mult``), then the flow's."""
    process_params = list(model.process.parameters())
    ids = {id(p) for p in process_params}
    flow_params = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": process_params, "weight_decay": 0.0, "lr": lr * process_lr_mult}]
    if flow_params:
        groups.append({"params": flow_params, "weight_decay": weight_decay})
    return groups


class _Run:
    """A ``train_bruno`` run's step, gradient scaling and validation, and their checkpointed state."""

    def __init__(
        self,
        model: Bruno,
        sample_batch: Callable[[torch.Generator], Tensor],
        config: dict[str, Any],
        val: Tensor | None,
        fabric: Fabric | None,
        desc: str = "bruno",
    ) -> None:
        self.model, self.sample_batch, self.config, self.fabric, self.desc = model, sample_batch, config, fabric, desc
        self.device = next(model.parameters()).device if fabric is None else fabric.device
        self.val = val.to(self.device) if val is not None else None
        self.generator = torch.Generator().manual_seed(config["seed"])
        self.log = TrainLog()
        self.best: dict[str, Tensor] | None = None  # the parameters of the best validation loss so far
        self.process_params = list(model.process.parameters())

    def state(self) -> dict[str, Any]:
        """What a resume restores beside the model and optimizer (the log's losses are the loop's)."""
        return {
            "generator": self.generator,
            "log": Saved(lambda: {k: v for k, v in self.log.state().items() if k != "loss"}, self._load_log),
            "best": Saved(lambda: self.best, lambda value: setattr(self, "best", value)),
        }

    def hooks(self) -> dict[str, Any]:
        """``train_loop``'s checkpointed state and hooks of this run."""
        return {
            "state": self.state(),
            "after_backward": self.scale_process,
            "after_step": self.after_step,
            "on_start": self.on_start,
        }

    def _load_log(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self.log, key, value)

    def step(self, t: int, module: torch.nn.Module) -> Tensor:
        """Step ``t``'s loss; a diverged model (non-finite parameters, which the process refuses as input
        checks) ends the run with a message naming the divergence."""
        try:
            return self._loss(module)
        except BadInputError as exc:
            if all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
                raise
            raise BadInputError(
                f"{self.desc}: training diverged (non-finite parameters at step {t}); lower the learning rate"
            ) from exc

    def _loss(self, module: torch.nn.Module) -> Tensor:
        x = dequantize(self.sample_batch(self.generator), self.generator)  # the global batch and its noise
        if self.fabric is None:
            return self.model.loss(x.to(self.device))
        # this shard's share of the mean over the global batch's B x n positions of -log p / D
        count = x.shape[0] * x.shape[1] * self.model.dim
        return -module(shard(x, self.fabric).to(self.device)).sum() / count  # through the wrapper: DDP, autocast

    def scale_process(self, t: int) -> None:
        factor = process_grad_scale(t, self.config["warmup"], self.config["process_scale"])
        for p in self.process_params:
            if p.grad is not None:
                p.grad.mul_(factor)

    def on_start(self, start: int) -> None:
        if self.val is not None and start == 0:
            self.evaluate(0)

    def after_step(self, done: int) -> None:
        if self.val is not None and (done % self.config["eval_every"] == 0 or done == self.config["steps"]):
            self.evaluate(done)

    def evaluate(self, step: int) -> None:
        """The validation loss; the best parameters so far (every rank: the same parameters, the same choice)."""
        assert self.val is not None  # called only with a validation batch
        self.model.eval()
        with torch.no_grad():
            v = float(self.model.loss(self.val))
        self.model.train()
        self.log.val_steps.append(step)
        self.log.val_loss.append(v)
        if v < self.log.best_val:
            self.log.best_val, self.log.best_step = v, step
            self.best = copy.deepcopy(self.model.state_dict())
