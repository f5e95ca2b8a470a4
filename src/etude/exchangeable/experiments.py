"""The BRUNO study's experiments as functions that return plain data (tensors, floats, dicts).

Korshunova et al., NeurIPS 2018 (arXiv:1802.07535), Sec. 5: train BRUNO (TP and GP) and a no-flow
TP on same-class sequences; predictive bits/dim as the number of conditioning images grows;
few-shot classification by the predictive density of the query; samples conditioned on a set.
The ``bruno`` study calls these; every random draw is seeded from the ``seed`` arguments.
Evaluation images are dequantized with uniform noise, x + U(0, 1), as the official code does
(``data_iter.py`` of github.com/IraKorshunova/bruno: one noise draw per test episode, shared by the
query under every candidate class).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from etude.exchangeable.bruno import Bruno
from etude.exchangeable.data import (
    DIGIT_LEVELS,
    DigitSplits,
    knn_predict,
    nearest_neighbour_predict,
    sample_episodes,
    sample_sequences,
)
from etude.exchangeable.training import TrainLog, train_bruno
from etude.flows import dequantize

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = [
    "MODEL_SPECS",
    "QUANTILES",
    "bits_per_dim_by_position",
    "conditional_sample_check",
    "correlation_quantiles",
    "few_shot_accuracy",
    "mean_se",
    "train_models",
]

MODEL_SPECS = ("TP", "GP", "TP no flow")
"""The three models of the study: Real NVP + Student-t, Real NVP + Gaussian, Student-t on logit pixels."""
QUANTILES = (0.1, 0.5, 0.9)
"""Quantiles of the learnt correlation rho/v over latent dimensions that the study reports."""


def mean_se(values: Tensor) -> tuple[float, float]:
    """Mean and standard error sd / sqrt(n) of a 1-d sample (nan SE for a single value)."""
    values = values.double()
    se = float(values.std() / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), se


def train_models(
    preset,
    splits: DigitSplits,
    seed: int,
    device: torch.device,
    checkpoints: Path,
    resume: bool = False,
    fabric: Fabric | None = None,
) -> tuple[dict[str, Bruno], dict[str, TrainLog]]:
    """Train the three models of ``MODEL_SPECS`` on the training classes; early stopping on a fixed,
    dequantized validation batch of held-out images of those classes (through ``fabric``'s devices
    and ranks when given, see `train_bruno`)."""
    g_val = torch.Generator().manual_seed(seed + 1)
    val = dequantize(
        sample_sequences(splits.val_x, splits.val_y, preset.val_sequences, preset.seq_len, g_val)[0], g_val
    )

    def batches(generator: torch.Generator) -> Tensor:
        return sample_sequences(splits.train_x, splits.train_y, preset.batch, preset.seq_len, generator)[0]

    specs = {
        "TP": (preset.flow, "tp", preset.steps),
        "GP": (preset.flow, "gp", preset.steps),
        "TP no flow": ("none", "tp", preset.baseline_steps),
    }
    models: dict[str, Bruno] = {}
    logs: dict[str, TrainLog] = {}
    for k, (label, (flow, process, steps)) in enumerate(specs.items()):
        torch.manual_seed(seed * 1000 + k)
        model = Bruno.build(
            (1, 8, 8),
            DIGIT_LEVELS,
            flow=flow,
            process=process,
            hidden=preset.hidden,
            blocks=preset.blocks,
            layers=preset.layers,
        ).to(device)
        tag = label.lower().replace(" ", "_")
        logs[label] = train_bruno(
            model,
            batches,
            steps,
            lr=preset.lr,
            weight_decay=preset.weight_decay,
            warmup=preset.warmup,
            process_scale=preset.process_scale,
            process_lr_mult=preset.process_lr_mult,
            val=val,
            eval_every=preset.eval_every,
            seed=seed * 1000 + k,
            checkpoint=checkpoints / f"{tag}.pt",
            resume=resume,
            show_progress=True,
            desc=f"bruno {label}",
            fabric=fabric,
        )
        model.eval()
        models[label] = model
    return models, logs


def correlation_quantiles(model: Bruno, quantiles: tuple[float, ...] = QUANTILES) -> list[float]:
    """Quantiles of the learnt correlation rho_d / v_d over the latent dimensions d."""
    corr = (model.process.rho / model.process.var).detach().double().cpu()
    return [float(v) for v in torch.quantile(corr, torch.tensor(quantiles, dtype=torch.float64))]


def bits_per_dim_by_position(
    models: dict[str, Bruno], splits: DigitSplits, n_sequences: int, seq_len: int, seed: int
) -> dict[str, dict[str, Tensor]]:
    """-log2 p(x_n | x_<n) / D on the same dequantized sequences for every model:
    {model: {'seen' | 'unseen': [sequences, seq_len]}}."""
    g = torch.Generator().manual_seed(seed)
    evals = {}
    for split, (x, y) in {"seen": (splits.test_x, splits.test_y), "unseen": (splits.unseen_x, splits.unseen_y)}.items():
        evals[split] = dequantize(sample_sequences(x, y, n_sequences, seq_len, g)[0], g)
    out: dict[str, dict[str, Tensor]] = {}
    with torch.no_grad():
        for label, model in models.items():
            device = next(model.parameters()).device
            out[label] = {
                split: torch.cat([model.bits_per_dim(s.to(device)).cpu() for s in seqs.split(50)])
                for split, seqs in evals.items()
            }
    return out


def few_shot_accuracy(
    model: Bruno, x: Tensor, y: Tensor, ways: int, shots: int, episodes: int, seed: int
) -> dict[str, float]:
    """5-way accuracy of BRUNO (argmax_c log p(query | support of class c)) and of pixel nearest
    neighbour on the same episodes; support and query are dequantized with one U(0, 1) draw each.

    :returns: {'bruno', 'nn'} accuracies over ``episodes * ways`` queries.
    """
    g = torch.Generator().manual_seed(seed)
    support, query = sample_episodes(x, y, ways, shots, episodes, g)
    target = torch.arange(ways).expand(episodes, ways)
    support_dq, query_dq = dequantize(support, g), dequantize(query, g)
    device = next(model.parameters()).device
    with torch.no_grad():
        pred = torch.cat(
            [
                model.classify(s.to(device), q.to(device)).argmax(-1).cpu()
                for s, q in zip(support_dq.split(50), query_dq.split(50))
            ]
        )
    return {
        "bruno": float((pred == target).double().mean()),
        "nn": float((nearest_neighbour_predict(support, query) == target).double().mean()),
    }


def conditional_sample_check(
    model: Bruno,
    x: Tensor,
    y: Tensor,
    splits: DigitSplits,
    context_size: int,
    samples_per_set: int,
    sets_per_class: int,
    generator: torch.Generator,
) -> tuple[float, list]:
    """Fraction of samples conditioned on a same-class set that a 5-NN pixel classifier (all ten
    digits, the conditioning images left out) puts in the set's class, and rows for a sample grid."""
    sets: list[tuple[int, Tensor]] = []
    rows: list[tuple[str, Tensor, Tensor]] = []
    hits, total = 0, 0
    for c in y.unique().tolist():
        idx = torch.nonzero(y == c).squeeze(1)
        for _ in range(sets_per_class):
            sets.append((c, idx[torch.randperm(len(idx), generator=generator)[:context_size]]))
    used = torch.zeros(len(x), dtype=torch.bool)
    for _, idx in sets:
        used[idx] = True
    all_x = torch.cat([splits.train_x, splits.val_x, splits.test_x, splits.unseen_x])
    all_y = torch.cat([splits.train_y, splits.val_y, splits.test_y, splits.unseen_y])
    keep = torch.ones(len(all_x), dtype=torch.bool)
    for img in x[used]:  # leave the conditioning images out of the classifier's reference set
        keep &= ~(all_x == img).flatten(1).all(1)
    device = next(model.parameters()).device
    for c, idx in sets:
        samples = model.sample(x[idx].to(device) + 0.5, samples_per_set, generator).cpu()
        samples = samples.clamp(0, DIGIT_LEVELS - 1e-3)
        pred = knn_predict(all_x[keep], all_y[keep], samples - 0.5, k=5)
        hits += int((pred == c).sum())
        total += len(pred)
        if len(rows) < 10 and not any(r[0] == f"class {c}" for r in rows):
            rows.append((f"class {c}", x[idx][:5], samples[:8]))
    return hits / total, rows
