"""Study `metavae`: Wu, Choi, Goodman, Ermon, "Meta-Amortized Variational Inference and Learning", AAAI 2020.

Wiring only: presets, claims, and a `run` that names its steps: the experiments of
`etude.meta.experiments` (the four models trained on two families: mixtures of Gaussians; rotated
and scaled digits), the rules of `etude.meta.criteria` (fixed before any run), the plots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from etude.meta import criteria
from etude.meta.datasets import SPLIT_STYLES, MogRecipe
from etude.meta.experiments import KMEANS, METHODS, RAW, all_seeds
from etude.meta.plots import plot_study
from etude.runtime import is_rank_zero
from etude.studies.fields import rule_metadata
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

MIN_SPLIT_VALUES = 4
"""The fewest transformation values `etude.meta.datasets.split_values` splits into seen and unseen."""

__all__ = ["MetaVaePreset", "MetaVaeStudy"]

REPO = "github.com/mhw32/meta-inference-public"
"""The official repository."""
ROTATIONS = tuple(range(-180, 180, 20))
"""The official rotations (``ROTATIONS`` in its ``src/datasets/mnist.py``): -180, -160, ..., 160 degrees."""
SCALES = tuple(round(0.5 + 0.1 * i, 1) for i in range(15))
"""The official scales (``SCALES`` in its ``src/datasets/mnist.py``): 0.5, 0.6, ..., 1.9 (above 1: smaller)."""


@dataclass(frozen=True)
class MetaVaePreset:
    """Sizes of the metavae study (every model gets the same steps, batch and optimizer)."""

    seeds: int = 3
    """Independent repetitions (fresh datasets, splits and initializations each)."""
    mog_train: int = 100
    """Training datasets of the MoG family (one decoder each for MetaVAE and VAE)."""
    mog_test: int = 50
    """Held-out MoG datasets that are clustered (the talk uses 50)."""
    mog_points: int = 200
    """Points per MoG dataset (see `MogRecipe` for the rest of the recipe)."""
    mog_steps: int = 1500
    """Adam steps per model on the MoG family (at 500 the ranking of MetaVAE and VAE flips with the seed)."""
    mog_hidden: int = 32
    """Hidden units of every MLP on the MoG family."""
    mog_z: int = 1
    """Latent size on the MoG family (points are clustered by k-means on these codes)."""
    mog_context: int = 30
    """Context set and explained points per dataset in each MoG minibatch."""
    digit_steps: int = 500
    """Adam steps per model on each transformed-digits family."""
    digit_hidden: int = 64
    """Hidden units on digits (the paper's MNIST models use 400)."""
    digit_z: int = 16
    """Latent size on digits (the paper's MNIST models use 40)."""
    digit_context: int = 10
    """Context set size on digits (the paper uses 10)."""
    batch: int = 8
    """Distributions per minibatch."""
    lr: float = 1e-3
    """Adam learning rate (the official MNIST config uses 2e-4 with far more steps)."""
    rotations: tuple = field(default=ROTATIONS, metadata=rule_metadata(min_items=MIN_SPLIT_VALUES))
    """Rotation angles in degrees, one distribution each (the official 18)."""
    rotation_style: str = field(default="interleaved", metadata=rule_metadata(choices=SPLIT_STYLES))
    """How rotation values split into seen and unseen: interleaved (the official 'standard'), sparse or contiguous."""
    scales: tuple = field(default=SCALES, metadata=rule_metadata(min_items=MIN_SPLIT_VALUES))
    """Scale factors, one distribution each (the official 15); split contiguously, the last len // 2 unseen
    (1.3-1.9: the digit shown smaller than any seen). Empty: skip."""
    kmeans_restarts: int = 4
    """k-means restarts per clustering."""
    dataset: str = "digits"
    """The items transformed: 'digits' (scikit-learn's bundled 8x8), 'mnist' or 'fashion-mnist' (28x28) or
    'smallnorb' (left camera, averaged to 32x32; labels the 5 categories), read by `etude data`."""
    data_dir: str = ""
    """Where the dataset is looked for first (``--data-dir``); '' = ``$ETUDE_DATA``, the cache, the Debian folder."""
    images: int = 1797
    """Images taken (seeded) from the dataset's training split (the digits are 1,797 whatever this is)."""
    pool: int = 1200
    """Images whose transformations the models train on; the rest are held out (probe and stability)."""
    device: str = "cpu"
    """Where the models train: 'cpu', 'cuda' or 'auto' (cuda when available), as Fabric's accelerator."""
    precision: str = "32-true"
    """Fabric precision of training ('bf16-mixed' in full); anything but '32-true' on the CPU trains through Fabric."""


class MetaVaeStudy(Study):
    """MetaVAE against VAE, Neural Statistician and VHE on new distributions of a family."""

    name = "metavae"
    title = "Meta-Amortized Variational Inference and Learning"
    citation = "Wu, Choi, Goodman, Ermon. AAAI 2020. arXiv:1902.01950"
    threads = 1
    trains_with_fabric = True
    presets = {
        "smoke": MetaVaePreset(
            seeds=1,
            mog_train=8,
            mog_test=4,
            mog_points=60,
            mog_steps=15,
            mog_hidden=16,
            mog_context=20,
            digit_steps=15,
            digit_hidden=16,
            digit_z=4,
            batch=4,
            rotations=(-60, -30, 0, 30, 60, 90),
            scales=(),
            kmeans_restarts=1,
        ),
        "quick": MetaVaePreset(),
        "long": MetaVaePreset(seeds=5, mog_steps=3000, digit_steps=2000),
        "full": MetaVaePreset(
            seeds=5,
            mog_steps=20000,
            mog_hidden=128,
            mog_context=50,
            digit_steps=30000,
            digit_hidden=400,
            digit_z=40,
            batch=32,
            lr=2e-4,
            kmeans_restarts=10,
            device="auto",
            precision="bf16-mixed",
            dataset="mnist",  # Wu et al. Sec. 5: rotated and scaled MNIST (the official src/datasets/mnist.py)
            images=10_000,
            pool=7_000,
        ),
    }

    def datasets(self, preset: MetaVaePreset) -> tuple[str, ...]:
        from etude.data.use import BUNDLED, check_dataset
        from etude.meta.datasets import IMAGE_DATASETS

        check_dataset("dataset", preset.dataset, IMAGE_DATASETS)
        return () if preset.dataset == BUNDLED else (preset.dataset,)

    def claims(self) -> list[Claim]:
        enough = f"needs >= {criteria.MIN_SEEDS} seeds and >= {criteria.MIN_STEPS} steps"
        return [
            Claim(
                "mog_clustering",
                "On new mixture-of-Gaussians datasets, clustering MetaVAE codes errs less than clustering VAE codes.",
                "arXiv:1902.01950 v1 (Choi, Wu, Goodman, Ermon, Feb 2019): MetaVAE representations cluster new "
                "MoG datasets; the experiment is not in the AAAI 2020 version nor the official repository, and its "
                "dataset recipe is not published (ours is MogRecipe)",
                "VAE error - MetaVAE error, paired per held-out dataset over every seed's datasets: holds if the "
                f"95% interval of the mean lies above 0, fails if below 0, otherwise inconclusive ({enough} and "
                f">= {criteria.MIN_DATASETS} held-out datasets); NS, VHE and k-means on raw points reported beside it",
            ),
            Claim(
                "rotation_probe",
                "A linear probe on MetaVAE codes of unseen rotations classifies digits better than on NS or VHE codes.",
                "AAAI 2020, transformation-invariance experiment (official figure images/invariance.png of "
                f"{REPO}, panel (a), 'Rotated MNIST, Interleaved': MetaVAE ~0.89, VHE ~0.83, NS ~0.75 at every "
                "unseen angle of -160, -120, ..., 160 degrees)",
                "MetaVAE's mean accuracy over seeds > NS's and > VHE's, and higher than both in every seed "
                f"({enough}); VAE and raw pixels reported beside it",
            ),
            Claim(
                "scale_probe",
                "On unseen smaller scales MetaVAE codes stay linearly separable; NS and VHE codes do much worse.",
                f"official figure images/invariance.png of {REPO}, panel (h), 'Scaled MNIST, Contiguous' (seen "
                "0.5-1.2, unseen 1.3-1.9, a factor above 1 showing the digit smaller): MetaVAE ~0.9, VHE 0.62 "
                "falling to 0.35, NS 0.42 falling to 0.27",
                f"MetaVAE's mean accuracy over seeds >= max(NS, VHE) + {criteria.SCALE_MARGIN} ({enough})",
            ),
            Claim(
                "codes_stay_put",
                "Within the family a model was amortized over, the MetaVAE code of an image moves less across "
                "the family's transformations than NS and VHE codes do.",
                f"official {REPO} scripts/analysis/distance.py: embeddings of every test image under every "
                "transformation, to compare code distances across the transformations 'it was trained on' (the "
                "script saves embeddings only: no number is published); NS and VHE are the paper's baselines",
                "stability = mean code distance of one held-out image across the seen rotations / mean distance "
                "between different images under one rotation; MetaVAE's mean over seeds < NS's and < VHE's, and "
                f"lower than both in every seed ({enough}); VAE and raw pixels reported beside it",
            ),
        ]

    def run(
        self, preset: MetaVaePreset, seed: int, out_dir: Path, resume: bool = False, fabric: Fabric | None = None
    ) -> Result:
        """Train every model (on ``fabric``'s devices and ranks when given); rank 0 alone measures and decides."""
        out_dir, p = Path(out_dir), preset
        claims = {c.id: c for c in self.claims()}
        found = all_seeds(p, seed, out_dir / "checkpoints", resume, fabric)  # 1. train and measure, every seed
        if not is_rank_zero(fabric):  # the other ranks trained along; rank 0 measures, decides and writes
            return Result(self.name, "", seed, claims=list(claims.values()))
        metrics = _judge(claims, found, p)  # 2. the fixed criteria
        artifacts = plot_study(metrics, found["example"], out_dir)  # 3. figures
        return Result(
            self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=[a.name for a in artifacts]
        )


def _line(values: dict[str, list[float]], pct: bool) -> str:
    fmt = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    return "; ".join(f"{k} {fmt(np.mean(v))} (seeds: {', '.join(fmt(x) for x in v)})" for k, v in values.items())


def _versus(values: dict[str, list[float]], floor: str, lower_is_better: bool) -> str:
    """Which learned methods beat the baseline `floor` on the mean over seeds (a sentence)."""
    base = float(np.mean(values[floor]))
    better = [k for k in METHODS if (np.mean(values[k]) < base) == lower_is_better]
    return f"{floor} scores {base:.3f}; methods better than it: {', '.join(better) or 'none'}."


def _judge(claims: dict[str, Claim], found: dict, p: MetaVaePreset) -> dict:
    """Decide every claim with `etude.meta.criteria` on what `all_seeds` measured; returns the metrics."""
    metrics = _judge_mog(claims["mog_clustering"], found["mog"], p)
    metrics.update(_judge_digits(claims, found, p))
    return metrics


def _judge_mog(claim: Claim, mog: list[dict], p: MetaVaePreset) -> dict:
    per_seed = {k: [float(np.mean(run[k])) for run in mog] for k in mog[0]}
    vae = np.concatenate([run["VAE"] for run in mog])
    holds, conclusive, d = criteria.mog_rule(
        vae, np.concatenate([run["MetaVAE"] for run in mog]), p.seeds, p.mog_test, p.mog_steps
    )
    claim.decide(
        f"VAE - MetaVAE clustering error, paired over {d['pairs']} held-out datasets ({p.seeds} seeds x "
        f"{p.mog_test}): {100 * d['mean']:+.1f} points (95% interval {100 * d['low']:+.1f} to {100 * d['high']:+.1f}); "
        "mean error " + _line(per_seed, True),
        holds,
        conclusive=conclusive,
        note=f"Recipe (ours): {MogRecipe(n_points=p.mog_points)}. Codes are {p.mog_z}-D; points are clustered by "
        "2-means on the codes; VAE = one shared q(z|x) with one decoder per training dataset (no context); "
        f"{p.mog_steps} Adam steps per model. k-means on the raw 2-D points is the floor: "
        + _versus(per_seed, KMEANS, lower_is_better=True),
    )
    return {"mog_error": per_seed, "mog_vae_minus_metavae": d}


def _judge_digits(claims: dict[str, Claim], found: dict, p: MetaVaePreset) -> dict:
    r, st = found["rotation"], found["stability"]
    held = f"{found['held_out']} held-out {p.dataset} images"
    items = "8x8 scikit-learn digits instead of MNIST" if p.dataset == "digits" else f"items: {p.dataset}"
    holds, conclusive = criteria.beats_rivals_rule(r, p.digit_steps)
    claims["rotation_probe"].decide(
        f"probe accuracy on unseen rotations ({p.rotation_style} split of {list(p.rotations)}): " + _line(r, False),
        holds,
        conclusive=conclusive,
        note=f"{items}; probe = standardized logistic regression on posterior means, fitted on half of the "
        f"{held} under every unseen angle, scored on the other half. " + _versus(r, RAW, lower_is_better=False),
    )
    holds, conclusive = criteria.stability_rule(st, p.digit_steps)
    claims["codes_stay_put"].decide(
        f"code distance across the seen rotations / between images, {held}: " + _line(st, False),
        holds,
        conclusive=conclusive,
        note="posterior means; each model encodes every rotation with a context set of that rotation's "
        f"held-out images ({p.digit_context}), or none (VAE, reported beside the paper's baselines). "
        + _versus(st, RAW, lower_is_better=True),
    )
    metrics = {"rotation_probe": r, "code_stability": st}
    if "scale" in found:
        sc = metrics["scale_probe"] = found["scale"]
        holds, conclusive = criteria.scale_rule(sc, p.digit_steps)
        unseen = list(p.scales)[len(p.scales) // 2 + 1 :]
        claims["scale_probe"].decide(
            f"probe accuracy on unseen smaller scales ({unseen}): " + _line(sc, False),
            holds,
            conclusive=conclusive,
            note=_versus(sc, RAW, lower_is_better=False),
        )
    else:
        claims["scale_probe"].note = "not run in this preset (scales are empty)"
    return metrics
