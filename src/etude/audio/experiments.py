"""The steps of the `amae` study (Dieleman, van den Oord, Simonyan, NeurIPS 2018, arXiv:1806.10474):
data, the stack and its one-level comparisons, the top level's code-free baseline, the held-out
measurements (NLL, code use, prediction error and the free-running calibration) and the verdicts.
`etude.audio.study.AmaeStudy.run` names them in order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from etude.audio import criteria
from etude.audio.ceiling import calibrate, decoder_prediction_error_db
from etude.audio.hierarchy import AutoEncoder, Hierarchy, HierarchyConfig, LevelConfig
from etude.audio.metrics import tonal
from etude.audio.presets import AmaePreset
from etude.audio.render import SAMPLE_RATE, piano_dataset, recorded_piano_dataset
from etude.audio.training import (
    encode_pieces,
    evaluate_level,
    evaluate_prior,
    fit_hierarchy,
    fixed_crops,
    to_classes,
    train_model,
)
from etude.audio.wavenet import receptive_field
from etude.errors import BadInputError
from etude.runtime import resolve_device

if TYPE_CHECKING:
    from lightning_fabric import Fabric

    from etude.studies.protocol import Claim

__all__ = [
    "Data",
    "load_data",
    "configs",
    "train_stack",
    "train_comparisons",
    "train_top_baseline",
    "measure",
    "judge",
    "ceiling_table",
    "figures_text",
    "tag",
]


@dataclass
class Data:
    """Rendered Bach as mu-law classes (train, held-out), held-out crops and the held-out clip that is heard."""

    train: list[torch.Tensor]
    valid: list[torch.Tensor]
    crops: torch.Tensor
    reference: np.ndarray
    device: Any


def load_data(p: AmaePreset, seed: int, fabric: Fabric | None = None) -> Data:
    """Render the pieces (every 4th held out), cut the held-out crops and the clip the study listens to."""
    if p.dataset == "piano":  # recordings (`etude data`'s piano folder), split by file as the renders are
        data = recorded_piano_dataset(p.pieces, data_dir=p.data_dir, max_seconds=p.max_seconds or None)
    else:
        data = piano_dataset(p.pieces, seed=seed, max_seconds=p.max_seconds or None)
    train, valid = to_classes(data["train"]), to_classes(data["valid"])
    reference = np.concatenate(data["valid"])[: max(p.total_hop_of(), int(p.reconstruct_seconds * SAMPLE_RATE))]
    device = resolve_device(p.device) if fabric is None else fabric.device
    return Data(train, valid, fixed_crops(valid, p.length, p.valid_crops), reference, device)


def configs(p: AmaePreset) -> tuple[list[LevelConfig], dict[str, tuple[LevelConfig, int]]]:
    """The stack's levels (bottom up) and the one-level comparisons with their step counts."""
    base = LevelConfig(
        hop=p.hops[0],
        codes=p.codes,
        residual=p.residual,
        skip=2 * p.residual,
        layers=p.layers,
        stacks=p.stacks,
        encoder_channels=p.encoder_channels,
        diversity=p.diversity,
        scalar_input=p.scalar_input,
    )
    stack = [base] + [
        LevelConfig(
            classes=p.codes,
            hop=h,
            codes=p.codes,
            residual=p.top_residual,
            skip=2 * p.top_residual,
            layers=p.top_layers,
            encoder_channels=p.encoder_channels,
            diversity=p.diversity,
        )
        for h in p.hops[1:]
    ]
    short = p.ablation_steps or p.steps
    models = {
        "wavenet": (dataclasses.replace(base, bottleneck="none"), p.steps),
        "vq": (dataclasses.replace(base, bottleneck="vq"), short),
        "vq_ema_restart": (
            dataclasses.replace(
                base, bottleneck="vq", ema=p.ema, kmeans_init=True, restart_threshold=p.restart_threshold
            ),
            short,
        ),
    }
    if p.ablate_diversity:
        models["amae_nodiv"] = (dataclasses.replace(base, diversity=0.0), short)
    return stack, models


def _train_args(p: AmaePreset, resume: bool, fabric: Fabric | None) -> dict:
    return dict(
        batch=p.batch,
        lr=p.lr,
        resume=resume,
        checkpoint_every=p.checkpoint_every,
        final_lr=p.final_lr,
        fabric=fabric,
    )


def train_stack(
    p: AmaePreset, seed: int, stack: list[LevelConfig], data: Data, ckpt: Path, resume: bool, fabric: Fabric | None
) -> tuple[Hierarchy, dict[str, list[float]]]:
    """The stack first (on a short budget its level-0 checkpoint is the figure that matters most)."""
    torch.manual_seed(seed * 1000 + 500)
    hier = Hierarchy(HierarchyConfig(tuple(stack), prior_residual=p.prior_residual, prior_layers=p.prior_layers))
    hier = hier.to(data.device)
    curves = fit_hierarchy(
        hier,
        data.train,
        steps=[p.steps] + [p.top_steps] * (len(stack) - 1),
        prior_steps=p.prior_steps,
        length=[p.length] + [p.top_length] * (len(stack) - 1),
        prior_length=p.prior_length,
        seed=seed * 1000 + 500,
        checkpoint_dir=ckpt,
        tag=tag("stack", stack[0], p),
        **_train_args(p, resume, fabric),
    )
    return hier, {f"stack {k}": v for k, v in curves.items()}


def train_comparisons(
    p: AmaePreset,
    seed: int,
    models: dict[str, tuple[LevelConfig, int]],
    data: Data,
    ckpt: Path,
    resume: bool,
    fabric: Fabric | None,
) -> tuple[dict[str, AutoEncoder], dict[str, list[float]]]:
    """The one-level comparisons: unconditional WaveNet, VQ-VAE plain and with its remedies, AMAE without diversity."""
    levels, curves = {}, {}
    for i, (key, (config, steps)) in enumerate(models.items()):
        torch.manual_seed(seed * 1000 + i)
        level = AutoEncoder(config).to(data.device)
        level.decoder.fit_first(data.train)
        curves[key] = train_model(
            level,
            level.loss,
            data.train,
            steps=steps,
            length=p.length,
            seed=seed * 1000 + i,
            checkpoint=ckpt / f"{key}.pt",
            tag=tag(key, config, p),
            desc=f"amae {key}",
            **_train_args(p, resume, fabric),
        )
        levels[key] = level
    return levels, curves


def train_top_baseline(
    p: AmaePreset,
    seed: int,
    hier: Hierarchy,
    data: Data,
    ckpt: Path,
    resume: bool,
    fabric: Fabric | None,
) -> tuple[AutoEncoder | None, dict[str, list[float]]]:
    """A level-1 decoder trained without codes (same size, crops and steps as the stack's level 1) on the
    level-0 codes: what level 1 predicts with no information from its own codes. None for a one-level stack."""
    if len(hier.levels) < 2:
        return None, {}
    config = dataclasses.replace(hier.config.levels[1], bottleneck="none")
    codes = encode_pieces(hier.autoencoders[0], data.train)
    torch.manual_seed(seed * 1000 + 700)
    level = AutoEncoder(config).to(data.device)
    level.decoder.fit_first(codes)
    curve = train_model(
        level,
        level.loss,
        codes,
        steps=p.top_steps,
        length=max(config.hop, p.top_length // config.hop * config.hop),
        seed=seed * 1000 + 700,
        checkpoint=ckpt / "top_baseline.pt",
        tag=tag("top_baseline", config, p),
        desc="amae level-1 baseline",
        **_train_args(p, resume, fabric),
    )
    return level, {"level-1 baseline (no codes)": curve}


@torch.no_grad()
def _per_crop_nll(level: AutoEncoder, crops: torch.Tensor) -> np.ndarray:
    """Decoder NLL (bits/symbol) of every crop [N, T], as `AutoEncoder.losses` computes it for a batch."""
    level.eval()
    device = next(level.parameters()).device
    out = []
    for part in crops.split(16):
        x = part.to(device)
        cond = level.encode(x).codes if level.conditional else None
        logits = level.decoder(x, cond)[:, :, :-1]
        out.append((F.cross_entropy(logits, x[:, 1:], reduction="none").mean(1) / math.log(2)).cpu())
    return torch.cat(out).double().numpy()


@torch.no_grad()
def _prediction_error(level: AutoEncoder, crops: torch.Tensor) -> float:
    device = next(level.parameters()).device
    cond = None
    if level.conditional:
        cond = torch.cat([level.encode(part.to(device)).codes.cpu() for part in crops.split(16)])
    return decoder_prediction_error_db(level.decoder, crops, cond)


def measure(
    p: AmaePreset, hier: Hierarchy, levels: dict[str, AutoEncoder], baseline: AutoEncoder | None, data: Data
) -> dict[str, Any]:
    """Held-out figures: NLL and code use of every model and level, the prior's bits per code, the top codes'
    gain over the code-free baseline, every audio decoder's prediction error and the calibration."""
    metrics: dict[str, Any] = {key: evaluate_level(level, data.crops) for key, level in levels.items()}
    codes_valid, level_crops = data.valid, data.crops
    for i, level in enumerate(hier.autoencoders):
        metrics[f"level{i}"] = evaluate_level(level, level_crops)
        codes_valid = encode_pieces(level, codes_valid)
        if i == 0 and baseline is not None:
            top_crops = fixed_crops(codes_valid, p.top_length, p.valid_crops)
            metrics["level1_baseline"] = evaluate_level(baseline, top_crops)
            conditional, free = _per_crop_nll(hier.autoencoders[1], top_crops), _per_crop_nll(baseline, top_crops)
            metrics["top_code_gain"] = criteria.code_gain(conditional, free) if len(top_crops) >= 2 else None
        if i + 1 < len(hier.levels):
            level_crops = fixed_crops(codes_valid, p.top_length, p.valid_crops)
    metrics["prior_bits_per_code"] = evaluate_prior(hier.prior, fixed_crops(codes_valid, p.prior_length, p.valid_crops))
    audio = {"level0": hier.autoencoders[0], **levels}
    metrics["prediction_error_db"] = {key: _prediction_error(level, data.crops) for key, level in audio.items()}
    try:
        metrics["calibration"] = calibrate(data.reference)
    except BadInputError as exc:  # a silent or very short held-out clip: nothing to calibrate on
        metrics["calibration"] = {"needed_db": None, "sweep": [], "why": str(exc)}
    return metrics


def ceiling_table(metrics: dict[str, Any], heard: dict) -> str:
    """Markdown table of every audio decoder's prediction error and NLL beside what a free-running model
    needs, and one sentence when the level-0 reconstruction is not tonal (the report shows both above the
    audio players)."""
    needed = metrics["calibration"]["needed_db"]
    need = "none tonal" if needed is None else f"{needed:.1f}"
    lines = [
        "| decoder | teacher-forced prediction error (dB re signal) | held-out NLL (bits/sample) | "
        "free-running model needs (dB) | gap (dB) |",
        "|---|---|---|---|---|",
    ]
    for key, db in metrics["prediction_error_db"].items():
        gap = "" if needed is None else f"{db - needed:+.1f}"
        lines.append(f"| {key} | {db:.1f} | {metrics[key]['nll_bits']:.3f} | {need} | {gap} |")
    recon = heard["reconstruction"][0]
    if recon.get("candidate") and not tonal(recon):
        level0 = metrics["prediction_error_db"]["level0"]
        why = (
            f"its decoder predicts the next sample to {level0:.1f} dB teacher-forced, {level0 - needed:.1f} dB short "
            f"of the {needed:.1f} dB a free-running model needs on this clip, so its own output loses the partials"
            if needed is not None and level0 > needed
            else "the teacher-forced prediction error alone does not explain it (see the table)"
        )
        lines += ["", f"This audio is not yet tonal (local flatness above the pass line): {why}."]
    return "\n".join(lines)


def judge(claims: dict[str, Claim], p: AmaePreset, metrics: dict[str, Any], heard: dict) -> None:
    """Apply `etude.audio.criteria` to the measured figures and record every verdict."""
    k, main = p.codes, p.hops[0]
    enough = p.steps >= p.min_steps and (p.ablation_steps or p.steps) >= p.min_steps and p.prior_steps >= p.min_steps
    uncond = metrics["wavenet"]["nll_bits"]
    held_codes = p.valid_crops * p.length // main
    compared: dict[str, str] = {
        "amae": "level0",
        **{m: m for m in ("vq", "vq_ema_restart", "amae_nodiv") if m in metrics},
    }
    use = {m: metrics[key]["usage"] for m, key in compared.items()}
    ent = {m: metrics[key]["entropy_bits"] for m, key in compared.items()}
    _decide(
        claims["codebook_usage"],
        "; ".join(f"{m} {use[m]}/{k} codes ({ent[m]:.2f} bits)" for m in use),
        criteria.codebook_usage_rule(use, k, held_codes, enough),
        note=f"{held_codes} held-out codes at hop {main}",
    )
    gains = {m: uncond - metrics[key]["nll_bits"] for m, key in compared.items()}
    holds, conclusive, leaks = criteria.information_bound_rule(gains, k, main, enough)
    claims["information_bound"].decide(
        f"unconditional {uncond:.3f} bits/sample; gains (bound {math.log2(k) / main:.3f}): "
        + ", ".join(f"{m} {gains[m]:+.3f}" for m in gains),
        holds,
        conclusive=conclusive,
        note=("LEAK: gain above the bound for " + ", ".join(leaks)) if leaks else "",
    )
    nlls = [metrics[f"level{i}"]["nll_bits"] for i in range(len(p.hops))]
    total = metrics["total_nll_bits"] = criteria.total_nll(nlls, metrics["prior_bits_per_code"], p.hops)
    _decide(
        claims["total_nll"],
        f"levels {', '.join(f'{n:.3f}' for n in nlls)} bits/symbol, prior {metrics['prior_bits_per_code']:.3f} "
        f"bits/code, hops {list(p.hops)}: total {total:.3f} vs unconditional {uncond:.3f} bits/sample",
        criteria.total_nll_rule(total, uncond, enough),
    )
    _judge_audio(claims, p, metrics, heard)
    metrics["listening"] = heard
    metrics["ceiling"] = ceiling_table(metrics, heard)
    metrics.update(
        gains=gains,
        receptive_field=receptive_field([2**i for i in range(p.layers)] * p.stacks),
        total_hop=p.total_hop_of(),
        temperature=p.temperature,
    )


def _judge_audio(claims: dict[str, Claim], p: AmaePreset, metrics: dict[str, Any], heard: dict) -> None:
    """The three audio claims: each clip's judgement, with the prediction-error gap in the note."""
    audible = p.steps >= p.min_audio_steps
    young = "" if audible else f"{p.steps} level-0 steps < min_audio_steps {p.min_audio_steps}"
    gap = criteria.prediction_gap_text(metrics["prediction_error_db"]["level0"], metrics["calibration"]["needed_db"])
    note = "; ".join(filter(None, [young, gap]))
    recon = heard["reconstruction"]
    _decide(
        claims["reconstruction"],
        figures_text(recon[0], "mel_db"),
        criteria.audio_rule(recon[0]["passes"], audible),
        note=note,
    )
    gain = metrics.get("top_code_gain")
    top_note = (
        ""
        if gain is None
        else f"top codes' gain over a level-1 decoder without codes ({p.top_steps} steps each): "
        f"{gain['mean']:+.3f} bits/symbol [{gain['low']:+.3f}, {gain['high']:+.3f}]"
    )
    _decide(
        claims["reconstruction_top"],
        figures_text(recon[-1], "mel_db"),
        criteria.reconstruction_top_rule(recon[-1]["passes"], audible, gain, p.top_steps, p.min_top_steps),
        note="; ".join(filter(None, [young, top_note, gap])),
    )
    sample = heard["sample"]
    baseline = heard.get("wavenet_sample")
    _decide(
        claims["samples"],
        figures_text(sample, "spectrum_db")
        + ("; unconditional WaveNet: " + figures_text(baseline, "spectrum_db") if baseline is not None else ""),
        criteria.audio_rule(sample["passes"], audible),
        note=note,
    )


def _decide(claim: Claim, measured: str, rule: tuple[bool, bool], note: str = "") -> None:
    claim.decide(measured, rule[0], conclusive=rule[1], note=note)


def figures_text(item: dict, distance: str) -> str:
    """'ours / noise / mu-law ceiling' for the judged metrics of one clip."""
    if not item.get("candidate"):
        return "not finite"
    c, n, top = item["candidate"], item["noise"], item["ceiling"]
    return (
        f"flatness {c['flatness']:.3g} (mu-law ceiling {top['flatness']:.3g}, noise {n['flatness']:.3g}); "
        f"{distance.replace('_db', '')} distance {c[distance]:.1f} dB (ceiling {top[distance]:.1f}, noise {n[distance]:.1f}); "
        f"chroma {c['chroma']:.2f} (ceiling {top['chroma']:.2f}, noise {n['chroma']:.2f}); local flatness "
        f"{c['local_flatness']:.3f} (ceiling {top['local_flatness']:.3f}, noise {n['local_flatness']:.3f}); RMS x{c['rms_ratio']:.2f}"
    )


def tag(key: str, config: LevelConfig, preset: AmaePreset) -> str:
    """Checkpoint tag: the model's name and a hash of its config and the preset."""
    text = json.dumps([key, dataclasses.asdict(config), dataclasses.asdict(preset)], sort_keys=True, default=str)
    return f"{key}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
