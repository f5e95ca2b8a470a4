"""Stochastic optimization of the ELBO with any base sampler, batched over independent runs.

Buchholz, Wenzel, Mandt, ICML 2018 (arXiv:1807.01604), Algorithm 1 (QMCVI): at every iteration
draw N base points, form the reparameterized ELBO gradient and take an optimizer step; Sec. 4's
variant keeps the step size constant and grows N (``SampleSizeSchedule``). Runs for several seeds
go in one batch: the family carries a leading seed dimension and every seed has its own sampler,
so one forward/backward pass serves all seeds and each seed's update depends only on its own
samples (Adam and SGD act coordinatewise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from etude.errors import BadInputError
from etude.runtime import train_loop
from etude.validation import check_int, check_number
from etude.vi.elbo import LogJoint, SampleSizeSchedule, elbo
from etude.vi.families import GaussianFamily
from etude.vi.qmc import BaseSampler

__all__ = ["FitHistory", "OPTIMIZERS", "Adam", "SGD", "fit", "evaluate_elbo"]

OPTIMIZERS = ("adam", "sgd")


class SGD:
    """Gradient descent with a constant step: theta <- theta - lr * g.

    (Plain updates instead of torch.optim, whose first use imports torch._dynamo: ~5 s per process.)
    """

    def __init__(self, params: Sequence[torch.Tensor], lr: float) -> None:
        self.params, self.lr = list(params), lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:  # as torch.optim: a parameter without a gradient stays put
                p.sub_(self.lr * p.grad)


class Adam(SGD):
    """Adam (Kingma and Ba 2015, Algorithm 1) with torch.optim.Adam's defaults betas (0.9, 0.999), eps 1e-8:

    m_t = b1 m + (1 - b1) g, v_t = b2 v + (1 - b2) g^2,
    theta <- theta - lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps).
    """

    def __init__(
        self, params: Sequence[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        super().__init__(params, lr)
        self.betas, self.eps, self.t = betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (v / (1 - b2**self.t)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - b1**self.t))


@dataclass
class FitHistory:
    """What a run went through; S = the family's batch (seed) size, 1 for an unbatched family.

    train_elbo: [steps, S] the estimate each step used; sizes: N per step;
    eval_steps: iterations at which ``eval_elbo`` [evals, S] was taken (0 = before any step);
    tracked: [steps + 1, S] values of ``track(family)`` before the first and after every step.
    """

    train_elbo: torch.Tensor
    sizes: list[int]
    eval_steps: list[int] = field(default_factory=list)
    eval_elbo: torch.Tensor | None = None
    tracked: torch.Tensor | None = None


def evaluate_elbo(
    log_joint: LogJoint, family: GaussianFamily, eps: torch.Tensor, max_points: int = 8192
) -> torch.Tensor:
    """The ELBO estimate on fixed base normals eps [M, d] (common random numbers), batch shape, no grad."""
    copies = max(1, family.batch_shape.numel())
    chunk = max(1, max_points // copies)
    with torch.no_grad():
        total: torch.Tensor | float = 0.0
        for start in range(0, eps.shape[0], chunk):
            part = eps[start : start + chunk].to(family.loc.dtype)
            total = total + log_joint(family.rsample(part)).sum(-1)
        return total / eps.shape[0] + family.entropy()


def fit(
    log_joint: LogJoint,
    family: GaussianFamily,
    sampler: BaseSampler | Sequence[BaseSampler],
    steps: int,
    n: int | SampleSizeSchedule,
    optimizer: str = "adam",
    lr: float = 0.01,
    eval_eps: torch.Tensor | None = None,
    eval_every: int = 0,
    track: Callable[[GaussianFamily], torch.Tensor] | None = None,
    desc: str = "",
) -> FitHistory:
    """Maximize the ELBO of ``family`` in place and return its history (``etude.runtime.train_loop``: no checkpoints,
    a fit takes seconds).

    :param sampler: one sampler, or one per seed for a family with batch shape [S].
    :param n: N per step, or a schedule t -> N_t.
    :param optimizer: 'adam' (the paper's experiments) or 'sgd' (constant step, Sec. 4).
    :param eval_eps: fixed base normals [M, d] for ``evaluate_elbo`` every ``eval_every`` steps.
    :param track: a function of the family recorded before the first and after every step.
    :param desc: a progress-bar label (no bar when empty).
    """
    check_int("steps", steps, 1)
    if optimizer not in OPTIMIZERS:
        raise BadInputError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    check_number("lr", lr, 0, low_open=True)
    if eval_every and eval_eps is None:
        raise BadInputError("eval_every needs eval_eps, the fixed base normals [M, d] to evaluate on")
    run = _FitRun(log_joint, family, sampler, n, steps, eval_eps, eval_every, track)
    run.maybe_eval(0)
    train_loop(
        run.step,
        steps=steps,
        model=family,
        optimizer=(Adam if optimizer == "adam" else SGD)(family.parameters(), lr=lr),
        kind="vi.fit",
        config={},
        after_step=run.after,
        desc=desc,
        show_progress=bool(desc),
    )
    return run.history()


class _FitRun:
    """One ``fit``: its step (the negative ELBO summed over seeds) and what it records after each step."""

    def __init__(
        self,
        log_joint: LogJoint,
        family: GaussianFamily,
        sampler: BaseSampler | Sequence[BaseSampler],
        n: int | SampleSizeSchedule,
        steps: int,
        eval_eps: torch.Tensor | None,
        eval_every: int,
        track: Callable[[GaussianFamily], torch.Tensor] | None,
    ) -> None:
        self.log_joint, self.family, self.sampler, self.n, self.steps = log_joint, family, sampler, n, steps
        self.eval_eps, self.eval_every, self.track = eval_eps, eval_every, track
        self.train: list[torch.Tensor] = []
        self.sizes: list[int] = []
        self.evals: list[torch.Tensor] = []
        self.eval_steps: list[int] = []
        self.tracked = [track(family)] if track else []

    def maybe_eval(self, t: int) -> None:
        if self.eval_every and (t % self.eval_every == 0 or t == self.steps):
            self.evals.append(evaluate_elbo(self.log_joint, self.family, self.eval_eps).reshape(-1))  # type: ignore[arg-type]
            self.eval_steps.append(t)

    def step(self, t: int, _: object) -> torch.Tensor:
        size = self.n(t) if isinstance(self.n, SampleSizeSchedule) else self.n
        value = elbo(self.log_joint, self.family, self.sampler, size)
        self.train.append(value.detach().reshape(-1))
        self.sizes.append(int(size))
        return -value.sum()  # seeds are independent: the sum's gradient is each seed's own

    def after(self, done: int) -> None:
        if self.track:
            self.tracked.append(self.track(self.family))
        self.maybe_eval(done)

    def history(self) -> FitHistory:
        return FitHistory(
            train_elbo=torch.stack(self.train),
            sizes=self.sizes,
            eval_steps=self.eval_steps,
            eval_elbo=torch.stack(self.evals) if self.evals else None,
            tracked=torch.stack([torch.as_tensor(v).reshape(-1) for v in self.tracked]) if self.track else None,
        )
