"""The metavae study's experiments as functions that return plain data (lists, floats, arrays).

Wu, Choi, Goodman, Ermon, AAAI 2020 (arXiv:1902.01950): the transformation-invariance experiment
(linear probes on codes of unseen rotations and scales; official repository
github.com/mhw32/meta-inference-public, ``images/invariance.png``), code stability within an
amortized family (its ``scripts/analysis/distance.py``), and clustering new mixture-of-Gaussians
datasets from latent codes (arXiv:1902.01950 v1; not in the AAAI version). Every model of
`etude.meta` is trained on the same data, steps and optimizer; every random draw is seeded from
``run_seed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from etude.errors import BadInputError
from etude.meta.base import SetModel
from etude.meta.datasets import MogRecipe, load_family_images, sample_mog_family, split_values, transformation_family
from etude.meta.evaluation import clustering_error, code_stability, kmeans_labels, linear_probe_accuracy
from etude.meta.metavae import MetaVAE
from etude.meta.statistician import NeuralStatistician
from etude.meta.training import fit
from etude.meta.vae import VAE
from etude.meta.vhe import VariationalHomoencoder
from etude.runtime import is_rank_zero

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = [
    "KMEANS",
    "METHODS",
    "RAW",
    "all_seeds",
    "build_models",
    "mog_clustering",
    "per_method",
    "transformation_probe",
]

METHODS = ("MetaVAE", "VAE", "NS", "VHE")
KMEANS = "k-means (raw points)"
RAW = "raw pixels"


def build_models(x_dim: int, z: int, hidden: int, n_train: int, likelihood: str, size: int, seed: int) -> dict:
    """The four models with their context mode (see `etude.meta.training.CONTEXT_MODES`), each
    initialization seeded on its own: {name: (model, mode)}."""
    factories = {
        "MetaVAE": (lambda: MetaVAE(x_dim, z, n_train, hidden, likelihood=likelihood), "disjoint"),
        "VAE": (lambda: VAE(x_dim, z, n_train, hidden, likelihood=likelihood), "none"),
        "NS": (lambda: NeuralStatistician(x_dim, z, 16, hidden, likelihood), "self"),
        "VHE": (lambda: VariationalHomoencoder(x_dim, z, 16, hidden, likelihood, dataset_size=size), "disjoint"),
    }
    made = {}
    for j, name in enumerate(METHODS):
        torch.manual_seed(seed * 10 + j)
        make, mode = factories[name]
        made[name] = (make(), mode)
    return made


def _fit(
    model: SetModel,
    mode: str,
    data: torch.Tensor,
    steps: int,
    n_x: int,
    n_context: int,
    p,
    run_seed: int,
    checkpoint: Path,
    resume: bool,
    desc: str,
    fabric: Fabric | None,
) -> bool:
    """``fit`` one model at the preset's batch and lr on every rank; True on rank 0 (the one that measures),
    with the model back on the CPU."""
    fit(
        model,
        data,
        steps,
        n_sets=p.batch,
        n_x=n_x,
        n_context=n_context,
        context=mode,
        lr=p.lr,
        seed=run_seed,
        checkpoint=checkpoint,
        resume=resume,
        show_progress=True,
        desc=desc,
        fabric=fabric,
    )
    if not is_rank_zero(fabric):
        return False
    model.cpu()
    return True


def mog_clustering(
    p, run_seed: int, ckpt: Path, resume: bool, fabric: Fabric | None = None
) -> tuple[dict[str, list[float]], dict]:
    """Clustering error of 2-means on each method's codes of every held-out MoG dataset.

    With a ``fabric`` every rank trains (`etude.meta.training.fit`); only rank 0 measures, the
    others return what they measured so far (nothing).

    :returns: ({method or 'k-means (raw points)': error per held-out dataset}, an example dataset's labels).
    """
    g = torch.Generator().manual_seed(run_seed)
    recipe = MogRecipe(n_points=p.mog_points)
    train, test = sample_mog_family(p.mog_train, recipe, g), sample_mog_family(p.mog_test, recipe, g)
    errors: dict[str, list[float]] = {
        KMEANS: [
            clustering_error(kmeans_labels(test.x[t], 2, run_seed, p.kmeans_restarts), test.labels[t])
            for t in range(p.mog_test)
        ]
    }
    example = {
        "points": test.x[0].numpy(),
        "truth": test.labels[0].numpy(),
        "k-means (raw)": kmeans_labels(test.x[0], 2, run_seed, p.kmeans_restarts),
    }
    n = min(p.mog_context, p.mog_points // 2)
    for name, (model, mode) in build_models(
        2, p.mog_z, p.mog_hidden, p.mog_train, "gaussian", p.mog_points, run_seed
    ).items():
        checkpoint = ckpt / f"mog_{name}_{run_seed}.pt"
        if not _fit(model, mode, train.x, p.mog_steps, n, n, p, run_seed, checkpoint, resume, f"MoG {name}", fabric):
            continue
        codes = model.encode(test.x, test.x)  # every held-out dataset is its own context; no gradient step
        labels = [kmeans_labels(codes[t], 2, run_seed, p.kmeans_restarts) for t in range(p.mog_test)]
        errors[name] = [clustering_error(labels[t], test.labels[t]) for t in range(p.mog_test)]
        example[name] = labels[0]
    return errors, example


def transformation_probe(
    p, kind: str, values: tuple, style: str, run_seed: int, ckpt: Path, resume: bool, fabric: Fabric | None = None
) -> tuple[dict[str, float], dict[str, float], int]:
    """Train on the seen transformations of ``pool`` images (1,200 digits); on the held-out rest measure
    (a) linear-probe accuracy on codes under the unseen transformations and (b) code stability
    (`code_stability`) under the seen ones, the transformations the family was amortized over.
    With a ``fabric``, as `mog_clustering`: every rank trains, rank 0 alone measures.

    :returns: ({method or 'raw pixels': probe accuracy}, {method or 'raw pixels': stability ratio}, the number
        of held-out images).
    """
    g = torch.Generator().manual_seed(run_seed)
    images, labels = load_family_images(p.dataset, p.images, run_seed, p.data_dir)  # [N, H, W]: 8x8, 28x28 or 32x32
    order = torch.randperm(len(images), generator=g)
    pool, probe_idx = order[: p.pool], order[p.pool :]
    if len(probe_idx) < 2:
        raise BadInputError(f"pool must leave >= 2 of the {len(images)} images held out, got pool={p.pool}")
    seen, unseen = split_values(list(values), style)
    data = transformation_family(images[pool], kind, seen)  # [M, 1200, H W]
    probe = transformation_family(images[probe_idx], kind, unseen)  # [U, Q, H W]
    held_seen = transformation_family(images[probe_idx], kind, seen)  # [M, Q, H W]
    y = labels[probe_idx].repeat(len(unseen))
    half = torch.arange(probe.shape[1]) < probe.shape[1] // 2
    first, second = half.repeat(len(unseen)), (~half).repeat(len(unseen))
    pick = torch.randperm(probe.shape[1], generator=g)[: p.digit_context]
    ctx, ctx_seen = probe[:, pick], held_seen[:, pick]  # the same context sets for every model

    def accuracy(features: torch.Tensor) -> float:
        f = features.reshape(-1, features.shape[-1])
        return linear_probe_accuracy(f[first], y[first], f[second], y[second], seed=run_seed)

    acc, stability = {RAW: accuracy(probe)}, {RAW: code_stability(held_seen)}
    models = build_models(data.shape[-1], p.digit_z, p.digit_hidden, len(seen), "bernoulli", data.shape[1], run_seed)
    for name, (model, mode) in models.items():
        checkpoint = ckpt / f"{kind}_{name}_{run_seed}.pt"
        steps, n_context = p.digit_steps, p.digit_context
        if not _fit(model, mode, data, steps, 20, n_context, p, run_seed, checkpoint, resume, f"{kind} {name}", fabric):
            continue
        acc[name] = accuracy(model.encode(probe, ctx))
        stability[name] = code_stability(model.encode(held_seen, ctx_seen))
    return acc, stability, len(probe_idx)


def per_method(rows: list[dict]) -> dict[str, list[float]]:
    """[{method: value} per seed] -> {method: [value per seed]}."""
    return {k: [r[k] for r in rows] for k in rows[0]}


def all_seeds(p, seed: int, ckpt: Path, resume: bool, fabric: Fabric | None = None) -> dict:
    """Every experiment on each of the preset's seeds (seed * 1000 + k): MoG clustering, the rotation probe and
    code stability, and the scale probe when the preset has scales.

    :returns: {'mog': [{method: errors per dataset} per seed], 'rotation' | 'stability' | 'scale':
        {method: [value per seed]} ('scale' only with scales), 'example': one held-out MoG dataset, 'held_out':
        the probes' held-out images}.
    """
    mog, rot, stab, scale, example = [], [], [], [], None
    for s in [seed * 1000 + k for k in range(p.seeds)]:
        errors, ex = mog_clustering(p, s, ckpt, resume, fabric)
        mog.append(errors)
        example = example or ex
        acc, stability, held_out = transformation_probe(
            p, "rotate", p.rotations, p.rotation_style, s, ckpt, resume, fabric
        )
        rot.append(acc)
        stab.append(stability)
        if p.scales:
            scale.append(transformation_probe(p, "scale", p.scales, "contiguous", s, ckpt, resume, fabric)[0])
    out: dict[str, Any] = {"mog": mog, "rotation": per_method(rot), "stability": per_method(stab), "example": example}
    out["held_out"] = held_out  # the probes' held-out images (the same count every seed)
    if scale:
        out["scale"] = per_method(scale)
    return out
