"""One resumable training loop: steps, optimizer and schedule, clipping, progress, logs, checkpoints, DDP.

A domain supplies a *step*, ``step(t, module) -> loss`` (the loss of step ``t``, computed through
``module``: the model or ``Objective`` that Fabric set up), and its data through the step's closure;
``train_loop`` does the rest, in this order each step: set the scheduled learning rate, zero the
gradients, ``loss = step(t, module)``, back-propagate, ``after_backward(t)``, clip, optimizer step,
record ``loss``, ``after_step(t + 1)``, and every ``every`` steps (and at the end) write an atomic
checkpoint, on rank 0 only.

**Loss scaling, one convention.** With W data-parallel ranks (``etude.runtime.distributed``), a step
returns its rank's *share* L_r of the global-batch loss, so that sum_r L_r is the loss of one process
on the whole global batch: L_r = (mean over an equal shard) / W, or (sum over any shard) / N for a
loss normalised by N examples or tokens of the global batch. The loop back-propagates W L_r (DDP
averages the W gradients: the gradient of sum_r L_r) and records sum_r L_r. Without a fabric, or
with one process, W = 1 and the loss is back-propagated and recorded as it is, bit for bit.

A step that returns ``None`` took its update itself (a closed-form or hand-made update, as the games'
learners); the loop then owns only the step count, progress, logs and checkpoints.

**Checkpoints.** ``{"kind", "config", "step", "losses", "model", "optimizer", **state}`` through
``save_checkpoint`` (atomic, with its SHA-256). ``config`` is the caller's whole configuration: a resume
from a checkpoint of another kind or configuration is refused with a one-line ``CheckpointError`` naming
the field; one with a flipped byte is refused by its hash. ``state`` holds whatever else a resumed run
needs to continue exactly: ``torch.Generator`` objects (their states) and objects with
``state_dict()``/``load_state_dict()`` (``Saved`` wraps a pair of functions). Rank 0 reads the
checkpoint and broadcasts it, so a checkpoint resumes at any world size.

**Progress.** On rank 0, with ``show_progress`` not False: on a terminal, a tqdm bar showing the running
loss and steps per second; otherwise a plain line every ``report_every`` steps (100) and a final summary
(``ETUDE_PROGRESS=0`` silences both). With ``log_dir``, the loss (and ``metrics()``) of every step go to
CSV and TensorBoard (``make_loggers``), on rank 0.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from etude.errors import BadInputError, CheckpointError
from etude.runtime.checkpoint import save_checkpoint
from etude.runtime.distributed import is_rank_zero, load_on_rank_zero, sum_over_ranks, world_size
from etude.runtime.progress import progress, progress_allowed
from etude.validation import check_int

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["GlobalRng", "LoopResult", "Saved", "train_loop"]


class _Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


class Saved:
    """A checkpointed piece of a run's state given by two functions: ``get() -> value`` and ``put(value)``."""

    def __init__(self, get: Callable[[], Any], put: Callable[[Any], object]) -> None:
        self.get, self.put = get, put

    def state_dict(self) -> Any:
        return self.get()

    def load_state_dict(self, state: Any) -> None:
        self.put(state)


class GlobalRng(Saved):
    """torch's global CPU generator (e.g. dropout masks), checkpointed and restored."""

    def __init__(self) -> None:
        super().__init__(torch.get_rng_state, torch.set_rng_state)


@dataclass
class LoopResult:
    """What the loop went through: the recorded loss of every step (resumed ones included)."""

    losses: list[float] = field(default_factory=list)
    start: int = 0
    """The step the run began at (0, or the resumed checkpoint's)."""


Step = Callable[[int, nn.Module], "Tensor | None"]


def _get(value: Any) -> Any:
    return value.get_state() if isinstance(value, torch.Generator) else value.state_dict()


def _put(value: Any, state: Any) -> None:
    if isinstance(value, torch.Generator):
        value.set_state(state)
    else:
        value.load_state_dict(state)


class _Reporter:
    """The progress bar (terminal) or plain lines (elsewhere) of rank 0, and the loggers."""

    def __init__(self, steps: int, start: int, desc: str, show: bool | None, every: int | None, log_dir: Any) -> None:
        self.steps, self.start, self.desc, self.done = steps, start, desc, start
        self.began, self.loss, self.bar, self.plain = time.perf_counter(), math.nan, None, False
        self.every = every or 100
        if show is not False and progress_allowed():
            if sys.stderr.isatty():
                self.bar = progress(total=steps, desc=desc, disable=False)
                self.bar.update(start)
            else:
                self.plain = True
        self.loggers: list[Any] = []
        if log_dir is not None:
            from etude.runtime.loggers import make_loggers

            self.loggers = make_loggers(log_dir, name=desc or "train")

    def rate(self) -> float:
        return (self.done - self.start) / max(time.perf_counter() - self.began, 1e-9)

    def update(self, done: int, loss: float | None, metrics: Mapping[str, float]) -> None:
        self.done = done
        if loss is not None:
            self.loss = loss
            for logger in self.loggers:
                logger.log_metrics({"loss": loss, **metrics}, step=done)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{self.loss:.4g}", refresh=False)
            self.bar.update(1)
        elif self.plain and (done - self.start) % self.every == 0 and done < self.steps:
            print(self.line(), file=sys.stderr, flush=True)

    def line(self) -> str:
        loss = "" if math.isnan(self.loss) else f", loss {self.loss:.4g}"
        return f"{self.desc or 'train'}: step {self.done}/{self.steps}{loss}, {self.rate():.3g} steps/s"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.plain and self.done > self.start:
            print(self.line() + f", {time.perf_counter() - self.began:.1f} s", file=sys.stderr, flush=True)
        for logger in self.loggers:
            logger.finalize("success")


def train_loop(
    step: Step,
    *,
    steps: int,
    model: Any = None,
    optimizer: Any = None,
    kind: str,
    config: Mapping[str, Any],
    fabric: Fabric | None = None,
    module: nn.Module | None = None,
    state: Mapping[str, Any] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    every: int = 100,
    resume: bool = False,
    schedule: Callable[[int], float] | None = None,
    clip: float | None = None,
    after_backward: Callable[[int], None] | None = None,
    after_step: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    metrics: Callable[[], Mapping[str, float]] | None = None,
    finite: bool = False,
    desc: str = "",
    show_progress: bool | None = None,
    report_every: int | None = None,
    log_dir: str | os.PathLike[str] | None = None,
) -> LoopResult:
    """Run ``steps`` steps of ``step`` (resuming from ``checkpoint`` when asked); see the module docstring.

    ``step(t, module)``: this rank's share of step ``t``'s loss, or None. ``model``: what is checkpointed
    (its state dict; None for a step updating ``state`` of its own); ``module``: what the step computes
    through (default ``model``; Fabric wraps it). ``optimizer``: a ``torch.optim`` one or any with
    ``zero_grad``/``step``. ``kind``, ``config``: stored, and checked on resume. ``state``: more checkpointed
    state (``torch.Generator``, ``state_dict`` objects, ``Saved``). ``every``: checkpoint cadence (and one at
    the end). ``schedule``: ``t -> factor`` of each group's initial learning rate. ``clip``: the gradients'
    total 2-norm (after DDP's average). Hooks: ``after_backward(t)``, ``after_step(done)``, ``on_start(start)``,
    ``metrics()`` (logged beside the loss). ``finite``: a NaN or infinite loss raises ``BadInputError`` ("training diverged").

    :raises CheckpointError: a resume from a damaged checkpoint or one of another kind or configuration.
    """
    check_int("steps", steps, 0)
    check_int("every", every, 1)
    extra = _own_state(state)
    module, optimizer = _set_up(model if module is None else module, optimizer, fabric)
    base = [group["lr"] for group in getattr(optimizer, "param_groups", [])]  # before a resume changes them
    saver = _Checkpointer(checkpoint, fabric, kind, dict(config), model, optimizer, extra)
    result = saver.resume(steps) if checkpoint is not None and resume else LoopResult()
    quiet = show_progress is False or not is_rank_zero(fabric)
    reporter = _Reporter(steps, result.start, desc, False if quiet else show_progress, report_every, log_dir)
    if on_start is not None:
        on_start(result.start)

    def take(t: int) -> Tensor | None:
        return _one_step(step, t, module, optimizer, fabric, base, schedule, clip, after_backward)

    hooks = _Hooks(after_step, metrics, finite, desc)
    _run_steps(take, result, steps, every, saver, reporter, hooks)
    saver.save(steps, result.losses)
    return result


def _own_state(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """The caller's extra checkpointed state, refused where it takes a name of the loop's own."""
    extra = dict(state or {})
    taken = {"kind", "config", "step", "losses", "model", "optimizer"} & set(extra)
    if taken:
        raise BadInputError(f"state names {sorted(taken)} are the loop's own")
    return extra


@dataclass(frozen=True)
class _Hooks:
    """What the loop does after each step: ``after_step(done)``, ``metrics()``, the divergence check."""

    after_step: Callable[[int], None] | None
    metrics: Callable[[], Mapping[str, float]] | None
    finite: bool
    desc: str


def _run_steps(
    take: Callable[[int], Tensor | None],
    result: LoopResult,
    steps: int,
    every: int,
    saver: _Checkpointer,
    reporter: _Reporter,
    hooks: _Hooks,
) -> None:
    """Steps ``result.start`` to ``steps``: record each loss, report, and checkpoint every ``every`` steps."""
    try:
        for t in range(result.start, steps):
            loss = take(t)
            value = None if loss is None else loss.item()
            if value is not None:
                if hooks.finite and not math.isfinite(value):
                    raise BadInputError(
                        f"{hooks.desc}: training diverged (loss {value} at step {t}); lower the learning rate"
                    )
                result.losses.append(value)
            if hooks.after_step is not None:
                hooks.after_step(t + 1)
            reporter.update(t + 1, value, {} if hooks.metrics is None else hooks.metrics())
            if (t + 1) % every == 0 and t + 1 < steps:
                saver.save(t + 1, result.losses)
    finally:
        reporter.close()


def _set_up(module: Any, optimizer: Any, fabric: Fabric | None) -> tuple[Any, Any]:
    """``module`` and ``optimizer`` set up through ``fabric`` (before a checkpoint is loaded, so that the
    optimizer's state lands on its device); as they are without one."""
    if fabric is None:
        return module, optimizer
    if module is None:
        raise BadInputError("a run through Fabric needs a model")
    if optimizer is None:
        return fabric.setup(module), None
    return fabric.setup(module, optimizer)


class _Checkpointer:
    """Writes the loop's checkpoints (rank 0) and resumes from one (read by rank 0, broadcast)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        fabric: Fabric | None,
        kind: str,
        config: dict[str, Any],
        model: Any,
        optimizer: Any,
        extra: dict[str, Any],
    ) -> None:
        self.path, self.fabric, self.kind, self.config = path, fabric, kind, config
        self.model, self.optimizer, self.extra = model, optimizer, extra

    def save(self, done: int, losses: list[float]) -> None:
        if self.path is None or not is_rank_zero(self.fabric):
            return
        state: dict[str, Any] = {"kind": self.kind, "config": self.config, "step": done, "losses": losses}
        if self.model is not None:
            state["model"] = self.model.state_dict()
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        save_checkpoint(self.path, {**state, **{name: _get(value) for name, value in self.extra.items()}})

    def resume(self, steps: int) -> LoopResult:
        """The run so far, restored into the model, optimizer and state; a fresh start without a checkpoint."""
        assert self.path is not None
        like: dict[str, Any] = {"step": int}
        if self.model is not None:
            like["model"] = self.model.state_dict()
        if isinstance(self.optimizer, torch.optim.Optimizer):
            like["optimizer"] = self.optimizer  # param groups, moments shaped and typed like the parameters
        like.update({k: v for k, v in self.extra.items() if isinstance(v, torch.Generator)})
        expect = {"kind": self.kind, "config": self.config}
        stored = load_on_rank_zero(self.path, self.fabric, expect=expect, like=like)
        if stored is None:
            return LoopResult()
        if not 0 <= stored["step"] <= steps:
            raise CheckpointError(
                f"checkpoint {self.path} does not fit this run: step {stored['step']} is not in [0, {steps}]; "
                "delete it or run without --resume"
            )
        if self.model is not None:
            self.model.load_state_dict(stored["model"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(stored["optimizer"])
        for name, value in self.extra.items():
            _put(value, stored[name])
        return LoopResult(list(stored["losses"]), int(stored["step"]))


def _one_step(
    step: Step,
    t: int,
    module: nn.Module,
    optimizer: Any,
    fabric: Fabric | None,
    base: list[float],
    schedule: Callable[[int], float] | None,
    clip: float | None,
    after_backward: Callable[[int], None] | None,
) -> Tensor | None:
    """One step: schedule, zero the gradients, loss, backward (W L_r under DDP), clip, update; the recorded loss."""
    if schedule is not None:
        factor = schedule(t)
        for group, lr in zip(optimizer.param_groups, base):  # load_state_dict replaces the group dicts
            group["lr"] = lr * factor
    if optimizer is not None:
        optimizer.zero_grad()  # torch.optim's default sets the gradients to None
    loss = step(t, module)
    if loss is None:
        return None
    ranks = world_size(fabric)
    if fabric is None:
        loss.backward()
    else:
        fabric.backward(loss * ranks if ranks > 1 else loss)  # DDP averages the ranks' gradients
    if after_backward is not None:
        after_backward(t)
    if clip is not None:
        if fabric is None:
            nn.utils.clip_grad_norm_(module.parameters(), clip)
        else:
            fabric.clip_gradients(module, optimizer, max_norm=clip, error_if_nonfinite=False)
    if optimizer is not None:
        optimizer.step()
    return sum_over_ranks(loss.detach(), fabric) if ranks > 1 else loss.detach()
