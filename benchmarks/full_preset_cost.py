"""What the full tier costs: FLOPs per training step at each study's ``full`` shapes, CPU step times, projections.

Run: .venv/bin/python benchmarks/full_preset_cost.py [--studies transformer_ae,amae,...] [--steps 2]
     [--out benchmarks/results/full_preset_cost_DATE.json]

For every network a study's ``full`` preset trains (sizes read from ``Study.presets["full"]``, models
built with the constructors the study uses), one training step = forward + backward + Adam step on a
random batch of the preset's shapes. Per distinct model:

- FLOPs per step: ``torch.utils.flop_counter.FlopCounterMode`` over forward + backward (matmuls,
  convolutions, attention; the optimizer's elementwise work is not counted), at the measured batch,
  scaled linearly to the preset's batch when a smaller batch was measured (said per row);
- kernels per step: aten operators dispatched by forward + backward + a foreach Adam step (what CUDA
  runs: PyTorch's Adam defaults to foreach on CUDA), counted with a TorchDispatchMode;
- CPU seconds per step at 1 and 2 threads (median of ``--steps`` steps after one warm-up step), only
  for the models marked as timed (the others are projected by their FLOPs ratio to the timed one).

Projections of the whole preset = sum over models of (trainings x steps x per-step time):
- 2-core CPU: the measured 2-thread step time x batch scale;
- H100: max(compute bound, latency bound) per step, where compute = FLOPs / (GPUs x peak x MFU) and
  latency = kernels x LAUNCH_S (eager PyTorch, every kernel launched from Python one at a time), plus,
  on 8 GPUs (DDP, the global batch sharded as the library does), a ring all-reduce of the fp32
  gradients. The assumptions are printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from etude.studies.registry import get_study

PEAK = {"bf16-mixed": 989.4e12, "32-true": 66.9e12}
"""H100 SXM5 dense peak FLOP/s: bf16 tensor cores (989.4 TFLOP/s), and FP32 on CUDA cores (66.9 TFLOP/s;
etude leaves torch's float32 matmul precision at 'highest', so 32-true presets do not use TF32)."""
MFU_LARGE, MFU_SMALL = 0.30, 0.05
"""Assumed model FLOP utilisation: 30% for matmul/conv-bound models with >= 1e11 FLOPs per step, 5% below."""
LARGE_FLOPS = 1e11
SMALL_TIMED_FLOPS = 5e9
"""Models under this many FLOPs per measured step are timed at 1 thread even when not marked as timed."""
LAUNCH_S = 10e-6
"""Assumed seconds per kernel of an eager PyTorch step on an H100 (launch and dispatch overhead, 5-10 us)."""
ALLREDUCE_BW = 360e9
"""Assumed NVLink ring all-reduce bus bandwidth per GPU, bytes/s (H100 SXM NVLink 4: 450 GB/s per direction)."""
GPUS = 8


@dataclass
class Case:
    """One distinct network of a full preset: how often it is trained and how one step is built."""

    study: str
    model: str
    trainings: int
    steps: int
    batch: int
    shape: str
    precision: str
    build: Callable[..., tuple[nn.Module, Callable[[], torch.Tensor]]]
    """(batch, length) -> (model, loss closure drawing a fresh random batch of that many items)."""
    measured_batch: int = 0
    """Batch at which the step is counted and timed (0: the preset's)."""
    length: int = 0
    """The preset's sequence length (0: the model has none)."""
    count_lengths: tuple[int, ...] = ()
    """Shorter lengths at which FLOPs are counted, extrapolated to ``length`` by the polynomial through them
    (degree len - 1: exact for FLOPs linear in length (convolutions) with 2, quadratic (attention) with 3)."""
    time_length: int = 0
    """Length of the timed step (0: ``length``); the time is scaled to ``length`` by the FLOPs ratio."""
    timed: bool = False
    note: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


_METADATA = {torch.ops.aten.detach.default, torch.ops.aten.empty.memory_format, torch.ops.aten.empty_like.default}


class _OpCounter(TorchDispatchMode):
    """Counts the aten operators a step dispatches: kernels (``ops``) and views and allocations (``views``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.is_view or func in _METADATA:
            self.views += 1
        else:
            self.ops += 1
        return func(*args, **(kwargs or {}))


def _step(model: nn.Module, loss_fn, optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss_fn().backward()
    optimizer.step()


# ---------------------------------------------------------------- transformer_ae


def transformer_ae_cases() -> list[Case]:
    from etude.music.autoencoder import TransformerAutoencoder
    from etude.music.events import PerformanceEncoding
    from etude.music.melody import MelodyEncoding
    from etude.music.study import MODELS
    from etude.music.training import Crops, _batch_loss
    from etude.music.transformer import TransformerConfig

    p = get_study("transformer_ae").presets["full"]
    vocab, mvocab = PerformanceEncoding().vocab_size, MelodyEncoding().vocab_size
    cases = []
    for name, (cond, combine, pool, relative, absolute) in MODELS.items():
        trainings = p.seeds if not p.seed_models or name in p.seed_models else 1

        def build(batch: int, length: int, cond=cond, combine=combine, pool=pool, relative=relative,
                  absolute=absolute):  # fmt: skip
            cfg = TransformerConfig(
                vocab_size=vocab, dim=p.dim, heads=p.heads, layers=p.layers, ff=p.ff, max_len=p.max_tokens,
                dropout=p.dropout, relative=relative, absolute=absolute,
            )  # fmt: skip
            model = TransformerAutoencoder(cfg, cond, combine, pool, encoder_layers=p.encoder_layers)
            g = torch.Generator().manual_seed(0)

            def loss() -> torch.Tensor:  # full-length crops: no padding, the most a step can cost
                perf = torch.randint(1, vocab - 1, (batch, length - 1), generator=g)
                mel = torch.randint(1, mvocab - 1, (batch, length), generator=g)
                return _batch_loss(model, Crops(perf, mel))

            return model, loss

        cases.append(
            Case("transformer_ae", name, trainings, p.steps, p.batch_size,
                 f"{p.batch_size} x {p.max_tokens} tokens, width {p.dim}, {p.layers}+{p.encoder_layers} layers",
                 p.precision, build, measured_batch=1, length=p.max_tokens, count_lengths=(32, 64, 128),
                 timed=name == "unconditional")
        )  # fmt: skip
    return cases


# ---------------------------------------------------------------- amae


def amae_cases() -> list[Case]:
    import dataclasses

    from etude.audio.experiments import configs
    from etude.audio.hierarchy import AutoEncoder
    from etude.audio.wavenet import WaveNet

    p = get_study("amae").presets["full"]
    stack, comparisons = configs(p)
    base, top = stack[0], stack[1]
    short = p.ablation_steps or p.steps
    top_len = max(top.hop, p.top_length // top.hop * top.hop)

    def level(config):
        def build(batch: int, length: int):
            model = AutoEncoder(config)
            g = torch.Generator().manual_seed(0)
            return model, lambda: model.loss(torch.randint(0, config.classes, (batch, length), generator=g))

        return build

    def prior(batch: int, length: int):
        model = WaveNet(top.codes, p.prior_residual, 2 * p.prior_residual, p.prior_layers, 1)
        g = torch.Generator().manual_seed(0)
        return model, lambda: model.nll_bits(torch.randint(0, top.codes, (batch, length), generator=g))

    l0 = dict(measured_batch=1, length=p.length, count_lengths=(512, 1024), time_length=2048)
    l1 = dict(measured_batch=1, length=top_len, count_lengths=(128, 256))
    shape0 = f"{p.batch} x {p.length} samples, residual {p.residual}, {p.layers}x{p.stacks} layers, K {p.codes}"
    shape1 = f"{p.batch} x {top_len} codes, residual {p.top_residual}, {p.top_layers} layers"
    cases = [
        Case("amae", "level 0 (AMAE)", 1, p.steps, p.batch, shape0, p.precision, level(base), **l0,
             timed=True),
        Case("amae", "WaveNet (no codes)", 1, comparisons["wavenet"][1], p.batch, shape0, p.precision,
             level(comparisons["wavenet"][0]), **l0),
        Case("amae", "VQ-VAE level 0 (plain, EMA+restarts, AMAE no diversity)", len(comparisons) - 1, short,
             p.batch, shape0, p.precision, level(comparisons["vq"][0]), **l0,
             note="the three one-level comparisons counted at the plain VQ model's cost"),
        Case("amae", "level 1 (AMAE)", len(stack) - 1, p.top_steps, p.batch, shape1, p.precision,
             level(top), **l1),
        Case("amae", "level 1 baseline (no codes)", 1, p.top_steps, p.batch, shape1, p.precision,
             level(dataclasses.replace(top, bottleneck="none")), **l1),
        Case("amae", "prior", 1, p.prior_steps, p.batch,
             f"{p.batch} x {p.prior_length} codes, residual {p.prior_residual}, {p.prior_layers} layers",
             p.precision, prior, measured_batch=1, length=p.prior_length, count_lengths=(128, 256)),
    ]  # fmt: skip
    return cases


# ---------------------------------------------------------------- pwcca


def pwcca_cases() -> list[Case]:
    from etude.similarity.digits import make_cnn, make_mlp

    p = get_study("pwcca").presets["full"]
    n_train = 1797 - round(1797 * p.test_fraction)  # load_digits_split's training images
    per_epoch = -(-n_train // p.batch_size)

    def build_for(make, widths):
        def build(batch: int, length: int = 0):
            model = make(list(widths), 0)
            g = torch.Generator().manual_seed(0)
            return model, lambda: nn.functional.cross_entropy(
                model(torch.randn(batch, 64, generator=g)), torch.randint(0, 10, (batch,), generator=g)
            )

        return build

    mlp = [p.width] * p.depth
    extra_lr = sum(1 for lr in p.learning_rates if not (lr == p.lr and p.lr_seeds <= p.nets_per_group))
    shape = f"{p.batch_size} x 64 (8x8 digits), {per_epoch} steps/epoch"
    cases = [
        Case("pwcca", f"MLP {p.width}x{p.depth}, true labels", p.nets_per_group + extra_lr * p.lr_seeds,
             p.epochs_true * per_epoch, p.batch_size, shape, p.precision, build_for(make_mlp, mlp), timed=True,
             note=f"generalizing group and {extra_lr} extra learning rates x {p.lr_seeds} seeds"),
        Case("pwcca", f"MLP {p.width}x{p.depth}, shuffled labels", p.nets_per_group, p.epochs_shuffled * per_epoch,
             p.batch_size, shape, p.precision, build_for(make_mlp, mlp)),
        Case("pwcca", f"CNN {list(p.cnn_channels)}", p.nets_per_group, p.epochs_true * per_epoch, p.batch_size,
             shape, p.precision, build_for(make_cnn, p.cnn_channels)),
    ] + [
        Case("pwcca", f"MLP {w}x{p.depth} (width sweep)", p.width_seeds, p.epochs_true * per_epoch, p.batch_size,
             shape, p.precision, build_for(make_mlp, [w] * p.depth))
        for w in p.widths
    ]  # fmt: skip
    return cases


# ---------------------------------------------------------------- bruno


def bruno_cases() -> list[Case]:
    from etude.exchangeable.bruno import Bruno
    from etude.exchangeable.data import DIGIT_LEVELS

    p = get_study("bruno").presets["full"]
    specs = {
        "TP": (p.flow, "tp", p.steps),
        "GP": (p.flow, "gp", p.steps),
        "TP no flow": ("none", "tp", p.baseline_steps),
        "TP dense": ("dense", "tp", p.steps),
        "GP dense": ("dense", "gp", p.steps),
    }
    cases = []
    for name, (flow, process, steps) in specs.items():

        def build(batch: int, length: int = 0, flow=flow, process=process):
            model = Bruno.build(
                (1, 8, 8), DIGIT_LEVELS, flow=flow, process=process, hidden=p.hidden, blocks=p.blocks, layers=p.layers
            )
            g = torch.Generator().manual_seed(0)
            return model, lambda: model.loss(torch.rand(batch, p.seq_len, 1, 8, 8, generator=g) * DIGIT_LEVELS)

        cases.append(
            Case("bruno", name, p.seeds, steps, p.batch, f"{p.batch} x {p.seq_len} images of 8x8, {flow} flow "
                 f"hidden {p.hidden}", p.precision, build, measured_batch=8, timed=name in ("TP", "TP dense"))
        )  # fmt: skip
    return cases


# ---------------------------------------------------------------- metavae


def metavae_cases() -> list[Case]:
    from etude.meta.datasets import sample_batch, split_values
    from etude.meta.experiments import METHODS, build_models

    p = get_study("metavae").presets["full"]
    n_mog = min(p.mog_context, p.mog_points // 2)
    families = {
        "MoG": (2, p.mog_z, p.mog_hidden, p.mog_train, "gaussian", p.mog_points, p.mog_steps, n_mog, n_mog, 1),
        "rotations": (64, p.digit_z, p.digit_hidden, len(split_values(list(p.rotations), p.rotation_style)[0]),
                      "bernoulli", 1200, p.digit_steps, 20, p.digit_context, 1),
    }  # fmt: skip
    if p.scales:
        families["scales"] = (
            64, p.digit_z, p.digit_hidden, len(split_values(list(p.scales), "contiguous")[0]), "bernoulli", 1200,
            p.digit_steps, 20, p.digit_context, 1,
        )  # fmt: skip
    cases = []
    for family, (x_dim, z, hidden, m, lik, size, steps, n_x, n_ctx, _) in families.items():
        for method in METHODS:

            def build(batch: int, length: int = 0, x_dim=x_dim, z=z, hidden=hidden, m=m, lik=lik, size=size, n_x=n_x, n_ctx=n_ctx,
                      method=method):  # fmt: skip
                model, mode = build_models(x_dim, z, hidden, m, lik, size, 0)[method]
                g = torch.Generator().manual_seed(0)
                data = torch.rand(m, size, x_dim, generator=g)
                if lik == "bernoulli":
                    data = data.round()

                def loss() -> torch.Tensor:  # as etude.meta.training.fit draws and calls it
                    b = sample_batch(data, batch, n_x, n_ctx if mode == "disjoint" else 1, g, None)
                    noise = model.noise(batch, n_x, g, dtype=b.x.dtype, device=b.x.device)
                    ctx, mask = (b.context, b.context_mask) if mode == "disjoint" else (None, None)
                    return model.loss(b.x, ctx, b.index, context_mask=mask, noise=noise)

                return model, loss

            cases.append(
                Case("metavae", f"{method} ({family})", p.seeds, steps, p.batch,
                     f"{p.batch} sets x {n_x} points of {x_dim}-d, hidden {hidden}, z {z}", p.precision, build,
                     timed=method == "MetaVAE" and family != "scales")
            )  # fmt: skip
    return cases


BUILDERS = {
    "transformer_ae": transformer_ae_cases,
    "amae": amae_cases,
    "pwcca": pwcca_cases,
    "bruno": bruno_cases,
    "metavae": metavae_cases,
}


def _count(case: Case, batch: int, length: int) -> tuple[float, int, int, int]:
    """(FLOPs, kernels, parameters, views) of one step after a warm-up step, at this batch and length."""
    torch.manual_seed(0)
    model, loss_fn = case.build(batch, length)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, foreach=True)
    _step(model, loss_fn, optimizer)  # warm-up: optimizer state, lazy init
    with FlopCounterMode(display=False) as counter:
        _step(model, loss_fn, optimizer)
    ops = _OpCounter()
    with ops:
        _step(model, loss_fn, optimizer)
    return float(counter.get_total_flops()), ops.ops, sum(q.numel() for q in model.parameters()), ops.views


def _time(case: Case, batch: int, length: int, steps: int, threads: tuple[int, ...]) -> dict[str, float]:
    """Median wall seconds of a step at each thread count (after one warm-up step)."""
    torch.manual_seed(0)
    model, loss_fn = case.build(batch, length)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)  # as the studies: the default (CPU: for-loop)
    torch.set_num_threads(1)
    _step(model, loss_fn, optimizer)
    out = {}
    for n in threads:
        torch.set_num_threads(n)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            _step(model, loss_fn, optimizer)
            times.append(time.perf_counter() - start)
        out[f"{n}t"] = statistics.median(times)
    torch.set_num_threads(1)
    return out


def measure(case: Case, steps: int) -> None:
    """Fill ``case.figures``: FLOPs and kernels per step at the preset's shapes, CPU s/step where timed."""
    torch.set_num_threads(1)
    mb = case.measured_batch or case.batch
    fig: dict[str, Any] = {"measured_batch": mb}
    if case.count_lengths:
        counts = [_count(case, mb, n) for n in case.count_lengths]
        coef = np.polyfit(case.count_lengths, [c[0] for c in counts], len(counts) - 1)
        flops_mb = float(np.polyval(coef, case.length))
        fig["counted_at_lengths"] = {n: c[0] for n, c in zip(case.count_lengths, counts)}
        _, kernels, params, views = counts[0]
    else:
        flops_mb, kernels, params, views = _count(case, mb, case.length)
    fig.update(
        parameters=params, flops_per_step=flops_mb * case.batch / mb, kernels_per_step=kernels, views_per_step=views
    )
    small = flops_mb < SMALL_TIMED_FLOPS
    if case.timed or small:
        length = case.time_length or case.length
        n_steps = steps if flops_mb < 1e10 else 1  # big steps: one each, on this shared machine
        times = _time(case, mb, length, n_steps, (1, 2) if case.timed else (1,))
        scale = case.batch / mb
        if length != case.length:
            flops_t = _count(case, mb, length)[0]
            fig["timed_length"], fig["timed_flops_measured_batch"] = length, flops_t
            scale *= flops_mb / flops_t
        for key, value in times.items():
            fig[f"cpu_s_per_step_{key}_measured"] = value
            fig[f"cpu_s_per_step_{key}"] = value * scale
    case.figures = fig


def project(cases: list[Case]) -> dict[str, Any]:
    """Whole-preset seconds on 2 CPU cores, 1 H100 and 8 H100 (sum over cases), and the per-case terms."""
    for c in cases:  # the 2-core figure: the better of 1 and 2 threads (the studies themselves run 1 thread)
        f = c.figures
        if "cpu_s_per_step_1t" in f:
            f["cpu_2core_s_per_step"] = min(f["cpu_s_per_step_1t"], f.get("cpu_s_per_step_2t", float("inf")))
            f["cpu_projected_from"] = "measured"
    timed = [c for c in cases if c.timed]
    # CPU seconds per FLOP of this study, from its timed models (the untimed large ones scale by their FLOPs)
    cpu_per_flop = sum(c.figures["cpu_2core_s_per_step"] for c in timed) / sum(
        c.figures["flops_per_step"] for c in timed
    )
    totals = {"cpu_2core_s": 0.0, "h100_1_s": 0.0, "h100_8_s": 0.0, "h100_8_models_in_parallel_s": 0.0, "flops": 0.0}
    longest = 0.0
    for c in cases:
        f = c.figures
        n = c.trainings * c.steps
        if "cpu_2core_s_per_step" not in f:
            f["cpu_2core_s_per_step"] = f["flops_per_step"] * cpu_per_flop
            f["cpu_projected_from"] = "FLOPs x the study's timed models' CPU seconds per FLOP"
        cpu = f["cpu_2core_s_per_step"]
        mfu = MFU_LARGE if f["flops_per_step"] >= LARGE_FLOPS else MFU_SMALL
        peak = PEAK[c.precision]
        latency = f["kernels_per_step"] * LAUNCH_S
        compute1 = f["flops_per_step"] / (peak * mfu)
        compute8 = compute1 / GPUS
        allreduce = 2 * (GPUS - 1) / GPUS * 4 * f["parameters"] / ALLREDUCE_BW + 2 * LAUNCH_S
        step1, step8 = max(compute1, latency), max(compute8, latency) + allreduce
        f.update(
            h100_compute_bound_s_per_step=compute1,
            h100_latency_bound_s_per_step=latency,
            h100_bound="compute" if compute1 >= latency else "latency",
            h100x8_s_per_step=step8,
            mfu_assumed=mfu,
        )
        totals["cpu_2core_s"] += n * cpu
        totals["h100_1_s"] += n * step1
        totals["h100_8_s"] += n * step8
        totals["flops"] += n * f["flops_per_step"]
        longest = max(longest, c.steps * step1)
    # the alternative to DDP: the preset's independent trainings spread over 8 GPUs, one per GPU at a time
    totals["h100_8_models_in_parallel_s"] = max(totals["h100_1_s"] / GPUS, longest)
    return totals


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _flops(value: float) -> str:
    for unit, size in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g} FLOP"


def table(results: dict[str, Any]) -> str:
    """The markdown table of docs/full_cost.md: one row per study."""
    rows = [
        "| study | full preset: trainings x steps, batch x shape | FLOPs/step | CPU s/step measured | "
        "projected whole preset: 2-core CPU / 1 H100 / 8 H100 (DDP) / 8 H100 (one model per GPU) | assumptions |",
        "|---|---|---|---|---|---|",
    ]
    for study, r in results["studies"].items():
        models, t = r["models"], r["totals"]
        shape = "; ".join(f"{m['model']}: {m['trainings']} x {m['steps']:,}" for m in models)
        shape += f"; each step {models[0]['shape']}" if len({m["shape"] for m in models}) == 1 else ""
        if len({m["shape"] for m in models}) > 1:
            shape += "; shapes: " + "; ".join(dict.fromkeys(m["shape"] for m in models))
        flops = [m["figures"]["flops_per_step"] for m in models]
        fl = _flops(min(flops)) if min(flops) == max(flops) else f"{_flops(min(flops))} - {_flops(max(flops))}"
        cpu = []
        for m in models:
            f = m["figures"]
            if "cpu_s_per_step_2t_measured" in f:
                at = f"batch {f['measured_batch']}" + (f", length {f['timed_length']}" if "timed_length" in f else "")
                scaled = (
                    ""
                    if f["cpu_s_per_step_1t"] == f["cpu_s_per_step_1t_measured"]
                    else (
                        f" (x{f['cpu_s_per_step_1t'] / f['cpu_s_per_step_1t_measured']:.3g} to the preset's step: "
                        f"{f['cpu_s_per_step_1t']:.3g} s)"
                    )
                )
                cpu.append(
                    f"{m['model']} at {at}: {f['cpu_s_per_step_1t_measured']:.3g} s (1 thread), "
                    f"{f['cpu_s_per_step_2t_measured']:.3g} s (2 threads){scaled}"
                )
        bounds = sorted({m["figures"]["h100_bound"] for m in models})
        mfu = sorted({m["figures"]["mfu_assumed"] for m in models})
        precision = sorted({m["precision"] for m in models})
        assume = (
            f"{', '.join(precision)}; MFU {', '.join(f'{v:.0%}' for v in mfu)}; "
            f"H100 step {' or '.join(bounds)}-bound ({sum(m['figures']['h100_bound'] == 'latency' for m in models)}"
            f" of {len(models)} models latency-bound)"
        )
        proj = " / ".join(
            _duration(t[k]) for k in ("cpu_2core_s", "h100_1_s", "h100_8_s", "h100_8_models_in_parallel_s")
        )
        rows.append(f"| {study} | {shape} | {fl} | {'; '.join(cpu)} | {proj} | {assume} |")
    return "\n".join(rows)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", default=",".join(BUILDERS))
    parser.add_argument("--steps", type=int, default=2, help="timed steps per thread count (median)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--table", type=Path, default=None, help="print the markdown table of a results file")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _git_commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "assumptions": {
            "h100_peak_flops": PEAK,
            "mfu_large_models": MFU_LARGE,
            "mfu_small_models": MFU_SMALL,
            "large_model_threshold_flops_per_step": LARGE_FLOPS,
            "seconds_per_kernel": LAUNCH_S,
            "allreduce_bytes_per_s": ALLREDUCE_BW,
            "gpus": GPUS,
            "flops": "FlopCounterMode over forward + backward (matmul, conv, attention); optimizer not counted",
            "kernels": "aten ops of forward + backward + foreach Adam, counted on the CPU, views and "
            "allocations left out; bf16 autocast's casts not counted",
            "h100_step": "max(FLOPs / (peak x MFU), kernels x seconds_per_kernel); x8: FLOPs / 8 and a ring "
            "all-reduce of fp32 gradients added; evaluation and sampling not counted; "
            "h100_8_models_in_parallel_s: the preset's independent trainings spread over 8 GPUs instead of DDP "
            "(not what etude does today), max(1-GPU total / 8, the longest single training)",
        },
        "studies": {},
    }
    for study in args.studies.split(","):
        started = time.perf_counter()
        cases = BUILDERS[study]()
        for case in cases:
            measure(case, args.steps)
        totals = project(cases)
        results["studies"][study] = {
            "totals": totals,
            "wall_s_of_this_measurement": round(time.perf_counter() - started, 1),
            "models": [{k: v for k, v in asdict(c).items() if k not in ("build",)} for c in cases],
        }
        print(json.dumps({study: totals}), flush=True)
    text = json.dumps(results, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
