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

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from etude.exchangeable.bruno import Bruno
from etude.exchangeable.data import (
    DigitSplits,
    knn_predict,
    load_image_splits,
    nearest_neighbour_predict,
    sample_episodes,
    sample_sequences,
)
from etude.exchangeable.training import TrainLog, train_bruno
from etude.flows import dequantize
from etude.runtime import is_rank_zero

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = [
    "MODEL_SPECS",
    "QUANTILES",
    "all_seeds",
    "bits_per_dim_by_position",
    "conditional_sample_check",
    "correlation_quantiles",
    "few_shot_accuracy",
    "one_seed",
    "pool_seeds",
    "train_models",
]

MODEL_SPECS = ("TP", "GP", "TP no flow", "TP dense", "GP dense")
"""The models of the study: the preset's flow + Student-t and + Gaussian process, Student-t on logit pixels,
and the dense-only flow + Student-t and + Gaussian process (the paper's protocol for TP against GP on unseen
classes: the official ``config_rnn/en2_noconv_mnist_even_{tp,gp}.py``)."""
QUANTILES = (0.1, 0.5, 0.9)
"""Quantiles of the learnt correlation rho/v over latent dimensions that the study reports."""


def train_models(
    preset,
    splits: DigitSplits,
    seed: int,
    device: torch.device,
    checkpoints: Path,
    resume: bool = False,
    fabric: Fabric | None = None,
) -> tuple[dict[str, Bruno], dict[str, TrainLog]]:
    """Train the models of ``MODEL_SPECS`` on the training classes; early stopping on a fixed,
    dequantized validation batch of held-out images of those classes (through ``fabric``'s devices
    and ranks when given, see `train_bruno`)."""
    g_val = torch.Generator().manual_seed(seed + 1)
    val = dequantize(
        sample_sequences(splits.val_x, splits.val_y, preset.val_sequences, preset.seq_len, g_val)[0], g_val
    )

    def batches(generator: torch.Generator) -> Tensor:
        return sample_sequences(splits.train_x, splits.train_y, preset.batch, preset.seq_len, generator)[0]

    models: dict[str, Bruno] = {}
    logs: dict[str, TrainLog] = {}
    for k, (label, (flow, process, steps)) in enumerate(_specs(preset).items()):
        model = _build(preset, (1, *splits.train_x.shape[2:4]), splits.levels, flow, process, seed * 1000 + k, device)
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


def _specs(preset) -> dict[str, tuple[str, str, int]]:
    """{label: (flow, process, steps)} of the models ``train_models`` trains, in training order."""
    return {
        "TP": (preset.flow, "tp", preset.steps),
        "GP": (preset.flow, "gp", preset.steps),
        "TP no flow": ("none", "tp", preset.baseline_steps),
        "TP dense": ("dense", "tp", preset.steps),
        "GP dense": ("dense", "gp", preset.steps),
    }


def _build(
    preset, shape: tuple[int, int, int], levels: int, flow: str, process: str, torch_seed: int, device: torch.device
) -> Bruno:
    """A BRUNO of the preset's sizes on images of ``shape`` ((1, 8, 8) digits, (1, 28, 28) MNIST and
    Fashion-MNIST) with ``levels`` grey levels, initialised after ``torch.manual_seed(torch_seed)``."""
    torch.manual_seed(torch_seed)
    model = Bruno.build(
        shape,
        levels,
        flow=flow,
        process=process,
        hidden=preset.hidden,
        blocks=preset.blocks,
        layers=preset.layers,
    )
    return model.to(device)


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
    models: dict[str, Bruno], x: Tensor, y: Tensor, ways: int, shots: int, episodes: int, seed: int
) -> dict[str, Tensor]:
    """Per-episode accuracy of each model (argmax_c log p(query | support of class c)) and of pixel nearest
    neighbour, on the same episodes; support and query are dequantized with one U(0, 1) draw each.

    :returns: {model label | 'pixel NN': accuracy of each episode [episodes], a mean over its ``ways`` queries}.
    """
    g = torch.Generator().manual_seed(seed)
    support, query = sample_episodes(x, y, ways, shots, episodes, g)
    target = torch.arange(ways).expand(episodes, ways)
    support_dq, query_dq = dequantize(support, g), dequantize(query, g)
    out = {}
    with torch.no_grad():
        for label, model in models.items():
            device = next(model.parameters()).device
            pred = torch.cat(
                [
                    model.classify(s.to(device), q.to(device)).argmax(-1).cpu()
                    for s, q in zip(support_dq.split(50), query_dq.split(50))
                ]
            )
            out[label] = (pred == target).double().mean(1)
    out["pixel NN"] = (nearest_neighbour_predict(support, query) == target).double().mean(1)
    return out


def conditional_sample_check(
    model: Bruno,
    x: Tensor,
    y: Tensor,
    splits: DigitSplits,
    context_size: int,
    samples_per_set: int,
    sets_per_class: int,
    generator: torch.Generator,
) -> tuple[list[float], list]:
    """For each conditioning set (``sets_per_class`` same-class sets of ``context_size`` images per class), the
    fraction of its samples that a 5-NN pixel classifier (all ten digits, the conditioning images left out) puts
    in the set's class; and rows for a sample grid.

    :returns: ([fraction per set], rows).
    """
    sets: list[tuple[int, Tensor]] = []
    rows: list[tuple[str, Tensor, Tensor]] = []
    fractions: list[float] = []
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
        samples = samples.clamp(0, splits.levels - 1e-3)
        pred = knn_predict(all_x[keep], all_y[keep], samples - 0.5, k=5)
        fractions.append(float((pred == c).double().mean()))
        if len(rows) < 10 and not any(r[0] == f"class {c}" for r in rows):
            rows.append((f"class {c}", x[idx][:5], samples[:8]))
    return fractions, rows


def one_seed(
    p, seed: int, device: torch.device, checkpoints: Path, resume: bool, fabric: Fabric | None = None
) -> dict | None:
    """Every experiment on one seed's split and models (None on ranks other than 0, which only train):
    {'seed', 'models', 'logs', 'bpd', 'shots': {1 | 5: per-episode accuracies}, 'samples': {split: (fractions
    per set, grid rows)}}."""
    splits = load_image_splits(p.dataset, seed, data_dir=p.data_dir, per_class=p.per_class)
    models, logs = train_models(p, splits, seed, device, checkpoints, resume, fabric)
    if not is_rank_zero(fabric):
        return None
    bpd = bits_per_dim_by_position(models, splits, p.eval_sequences, p.seq_len, seed + 2)
    classifiers = {k: models[k] for k in ("TP", "GP")}
    shots = {
        k: few_shot_accuracy(classifiers, splits.unseen_x, splits.unseen_y, 5, k, p.episodes, seed + 3 + k)
        for k in (1, 5)
    }
    g_sample = torch.Generator().manual_seed(seed + 4)
    samples = {
        split: conditional_sample_check(
            models["TP"], x, y, splits, p.context_size, p.samples_per_set, p.sets_per_class, g_sample
        )
        for split, (x, y) in {
            "unseen": (splits.unseen_x, splits.unseen_y),
            "seen": (splits.test_x, splits.test_y),
        }.items()
    }
    return {
        "seed": seed,
        "models": models,
        "logs": logs,
        "bpd": bpd,
        "shots": shots,
        "samples": samples,
        "levels": splits.levels,
    }


def all_seeds(
    p, seed: int, device: torch.device, out_dir: Path, resume: bool, fabric: Fabric | None = None
) -> list[dict]:
    """`one_seed` on each of the preset's seeds (seed + 7919 k; checkpoints of seed k > 0 in checkpoints_seed<k>);
    empty on ranks other than 0."""
    found = [
        one_seed(p, s, device, out_dir / ("checkpoints" if k == 0 else f"checkpoints_seed{k}"), resume, fabric)
        for k, s in enumerate(seed + 7919 * k for k in range(p.seeds))
    ]
    return [r for r in found if r is not None]


def pool_seeds(runs: list[dict]) -> dict:
    """The seeds' figures pooled: bits/dim sequences, few-shot episodes and conditioning sets concatenated;
    per-seed lists of correlation quantiles, kept steps and validation losses."""
    labels = list(runs[0]["models"])
    nu = torch.cat([r["models"]["TP dense"].process.nu.detach().cpu() for r in runs])
    return {
        "seeds": [r["seed"] for r in runs],
        "parameters": {k: sum(q.numel() for q in m.parameters()) for k, m in runs[0]["models"].items()},
        "best_step": {k: [r["logs"][k].best_step for r in runs] for k in labels},
        "best_val": {k: [r["logs"][k].best_val for r in runs] for k in labels},
        "corr": {k: [correlation_quantiles(r["models"][k]) for r in runs] for k in labels},
        "bpd": {k: {s: torch.cat([r["bpd"][k][s] for r in runs]) for s in ("seen", "unseen")} for k in labels},
        "shots": {n: {m: torch.cat([r["shots"][n][m] for r in runs]) for m in runs[0]["shots"][n]} for n in (1, 5)},
        "samples": {s: [f for r in runs for f in r["samples"][s][0]] for s in ("unseen", "seen")},
        "nu_median": float(nu.median()),
        "nu_min": float(nu.min()),
    }
