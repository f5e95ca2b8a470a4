"""Study `bruno`: Korshunova et al., "BRUNO: A Deep Recurrent Model for Exchangeable Data", NeurIPS 2018.

Wiring only: scikit-learn digits, trained on the even classes, evaluated on held-out images of the
even classes ("seen") and on the odd classes ("unseen"); the claims of Sec. 5 (predictive
likelihood, few-shot classification, Student-t against Gaussian process, conditional samples).
The experiments live in `etude.exchangeable.experiments`; with ``seeds > 1`` every seed trains its
own models on its own split and the figures pool the seeds' sequences, episodes and samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from etude.exchangeable.data import DIGIT_LEVELS, load_digit_splits
from etude.exchangeable.experiments import (
    QUANTILES,
    bits_per_dim_by_position,
    conditional_sample_check,
    correlation_quantiles,
    few_shot_accuracy,
    mean_se,
    train_models,
)
from etude.exchangeable.plots import plot_bits_per_dim, plot_sample_grid, plot_training
from etude.runtime import is_rank_zero, resolve_device
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["BrunoPreset", "BrunoStudy"]

POSITIONS = (0, 1, 4, 19)


@dataclass(frozen=True)
class BrunoPreset:
    """Sizes of the BRUNO study (flow, training, evaluation)."""

    flow: str = "realnvp"
    """'realnvp' (multi-scale conv Real NVP), 'dense' (the paper's dense-only MNIST flow) or 'none'."""
    hidden: int = 8
    """Channels (conv) or units (dense) of each coupling network."""
    blocks: int = 1
    """Residual blocks per conv coupling network."""
    layers: int = 4
    """Dense couplings, for flow='dense'."""
    seq_len: int = 20
    """Images per training sequence (paper: 20)."""
    batch: int = 8
    """Sequences per training step."""
    steps: int = 600
    """Training steps of each flow model (TP and GP)."""
    baseline_steps: int = 600
    """Training steps of the no-flow TP baseline (the process alone on logit pixels)."""
    lr: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay on the flow (not the process)."""
    warmup: int = 100
    """Steps with the process parameters frozen (gradient scale 0; paper: 100)."""
    process_scale: float = 0.1
    """Gradient scale of the process parameters after the warm-up (paper: 0.1; inert under Adam)."""
    process_lr_mult: float = 30.0
    """Learning rate of the process parameters = lr x this. Adam moves a logit by about lr per step, and
    600 steps (against the official 50k-200k) leave rho/v near its initial 0.1 at a multiplier of 1."""
    eval_every: int = 100
    """Validation (early stopping) every this many steps."""
    val_sequences: int = 32
    """Validation sequences (from held-out images of the training classes)."""
    eval_sequences: int = 200
    """Evaluation sequences of seq_len images, per split (seen, unseen)."""
    episodes: int = 500
    """Few-shot episodes per setting (5-way 1-shot, 5-way 5-shot)."""
    context_size: int = 10
    """Images in each conditioning set for samples."""
    samples_per_set: int = 20
    """Samples drawn per conditioning set."""
    sets_per_class: int = 2
    """Conditioning sets per class for the sample check."""
    seeds: int = 1
    """Independent repetitions (split, models, evaluation); figures pool them."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'auto' (cuda when available); anything but 'cpu' trains through Fabric, as its accelerator."""
    precision: str = "32-true"
    """Fabric precision of training; '32-true' in full too: 8x8 images and 32-channel couplings gain no speed
    from bf16, whose 8-bit mantissa would round the flow's log-determinants and the process recursion."""


class BrunoStudy(Study):
    """BRUNO (Real NVP + exchangeable Student-t process) on digits with held-out classes."""

    name = "bruno"
    title = "BRUNO: A Deep Recurrent Model for Exchangeable Data"
    threads = 1
    trains_with_fabric = True
    citation = "Korshunova, Degrave, Huszar, Gal, Gretton, Dambre. NeurIPS 2018. arXiv:1802.07535"
    presets = {
        "smoke": BrunoPreset(
            hidden=4,
            batch=4,
            steps=12,
            baseline_steps=12,
            warmup=4,
            eval_every=6,
            val_sequences=4,
            eval_sequences=8,
            episodes=8,
            samples_per_set=4,
            sets_per_class=1,
        ),
        "quick": BrunoPreset(),
        "long": BrunoPreset(
            hidden=16,
            steps=2000,
            baseline_steps=1500,
            eval_every=200,
            val_sequences=64,
            eval_sequences=300,
            episodes=1000,
            sets_per_class=4,
            seeds=3,
        ),
        "full": BrunoPreset(
            hidden=32,
            blocks=2,
            batch=32,
            steps=5000,
            baseline_steps=3000,
            eval_every=250,
            val_sequences=128,
            eval_sequences=1000,
            episodes=2000,
            sets_per_class=4,
            seeds=3,
            device="auto",
        ),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim(
                "bpd_falls",
                "Predictive bits/dim falls as the number of conditioning images grows, on seen and on unseen classes.",
                "paper Sec. 5 (MNIST, odd digits unseen): the negative log-likelihood of image n+1 falls with the "
                "number n of conditioning images, on seen and unseen digits",
                "TP model's mean bits/dim strictly decreasing over n = 0, 1, 4, 19 on both seen and unseen "
                "classes, and bpd(0) - bpd(19) > 2 standard errors (paired over sequences) on each "
                "(needs >= 300 steps and >= 100 evaluation sequences)",
            ),
            Claim(
                "few_shot",
                "Conditioning on a support set classifies unseen classes in 5-way 1-shot and 5-shot.",
                "Omniglot TP 5-way 1-shot 0.863, 5-shot 0.957 (paper Sec. 5, few-shot table, two-seed mean)",
                "on unseen classes: 1-shot >= 0.5, 5-shot >= 0.7, 5-shot > 1-shot, and each at most 0.05 below "
                "the pixel nearest-neighbour baseline (needs >= 300 steps and >= 200 episodes)",
            ),
            Claim(
                "tp_beats_gp",
                "The Student-t process fits unseen classes better than the Gaussian process.",
                "dense-only MNIST, odd digits unseen: TP 1.715 vs GP 1.867 bits/dim (paper Sec. 5)",
                "unseen classes, mean bits/dim over all 20 positions, paired over the same sequences: holds if "
                "GP - TP > 2 SE, fails if TP - GP > 2 SE, otherwise inconclusive (needs >= 300 steps and "
                ">= 100 evaluation sequences)",
            ),
            Claim(
                "samples_match_set",
                "Samples conditioned on a set look like the set.",
                "qualitative (paper Sec. 5: samples conditioned on a set share its class and style)",
                "a 5-nearest-neighbour pixel classifier (all ten digits, conditioning images left out) assigns "
                ">= 50% of the samples conditioned on an unseen-class set to that class (chance 10%) "
                "(needs >= 300 steps); grid: samples_unseen.png, samples_seen.png",
            ),
        ]

    @staticmethod
    def _one_seed(
        p: BrunoPreset, seed: int, device: torch.device, checkpoints: Path, resume: bool, fabric: Fabric | None
    ) -> dict | None:
        """Every experiment on one seed's split and models (None on ranks other than 0, which only train)."""
        splits = load_digit_splits(seed)
        models, logs = train_models(p, splits, seed, device, checkpoints, resume, fabric)
        if not is_rank_zero(fabric):
            return None
        bpd = bits_per_dim_by_position(models, splits, p.eval_sequences, p.seq_len, seed + 2)
        shots = {
            k: few_shot_accuracy(models["TP"], splits.unseen_x, splits.unseen_y, 5, k, p.episodes, seed + 3 + k)
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
        return {"models": models, "logs": logs, "bpd": bpd, "shots": shots, "samples": samples}

    def run(
        self, preset: BrunoPreset, seed: int, out_dir: Path, resume: bool = False, fabric: Fabric | None = None
    ) -> Result:
        """Train every model (on ``fabric``'s devices and ranks when given), then evaluate and decide on rank 0."""
        out_dir, p = Path(out_dir), preset
        device = resolve_device(p.device) if fabric is None else fabric.device
        run_seeds = [seed + 7919 * k for k in range(p.seeds)]
        found = [
            self._one_seed(
                p, s, device, out_dir / ("checkpoints" if k == 0 else f"checkpoints_seed{k}"), resume, fabric
            )
            for k, s in enumerate(run_seeds)
        ]
        runs = [r for r in found if r is not None]
        if not runs:  # the other ranks trained along; rank 0 evaluates, decides and writes
            return Result(self.name, "", seed, claims=self.claims())
        out_dir.mkdir(parents=True, exist_ok=True)
        first = runs[0]
        labels = list(first["models"])
        bpd = {
            label: {split: torch.cat([r["bpd"][label][split] for r in runs]) for split in ("seen", "unseen")}
            for label in labels
        }
        corr = {label: [correlation_quantiles(r["models"][label]) for r in runs] for label in labels}
        metrics: dict = {
            "device": str(device),
            "seeds": run_seeds,
            "parameters": {k: sum(q.numel() for q in m.parameters()) for k, m in first["models"].items()},
            "best_step": {k: [r["logs"][k].best_step for r in runs] for k in labels},
            "best_val_nats_per_dim": {k: [r["logs"][k].best_val for r in runs] for k in labels},
            "corr_quantiles": {"quantiles": list(QUANTILES), **corr},
            "bits_per_dim": {
                label: {split: [round(float(v), 4) for v in b.mean(0)] for split, b in d.items()}
                for label, d in bpd.items()
            },
        }
        claims = {c.id: c for c in self.claims()}
        enough = p.steps >= 300 and p.eval_sequences >= 100
        self._decide_bpd(claims["bpd_falls"], bpd, corr, metrics, p, runs, enough)
        self._decide_tp_gp(claims["tp_beats_gp"], bpd, runs, metrics, enough)
        self._decide_few_shot(claims["few_shot"], runs, metrics, p)
        self._decide_samples(claims["samples_match_set"], runs, metrics, p)

        artifacts = [
            plot_sample_grid(first["samples"][split][1], out_dir / f"samples_{split}.png", DIGIT_LEVELS)
            for split in ("unseen", "seen")
        ]
        curves = {f"{label} {split}": b.mean(0) for label, d in bpd.items() for split, b in d.items()}
        artifacts.append(
            plot_bits_per_dim(
                curves, out_dir / "bits_per_dim.png", "digits: bits/dim of image n+1 given n images of its class"
            )
        )
        artifacts.append(
            plot_training(
                {k: (log.loss, log.val_steps, log.val_loss) for k, log in first["logs"].items()},
                out_dir / "training.png",
            )
        )
        return Result(
            self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=[a.name for a in artifacts]
        )

    # -- verdicts (criteria as stated in claims()) --------------------------------------------------

    @staticmethod
    def _corr_text(corr: list[list[float]]) -> str:
        return "; ".join("/".join(f"{v:.3f}" for v in q) for q in corr)

    def _decide_bpd(
        self, claim: Claim, bpd: dict, corr: dict, metrics: dict, p: BrunoPreset, runs: list, enough: bool
    ) -> None:
        parts, ok = [], True
        for split in ("seen", "unseen"):
            b = bpd["TP"][split]
            at = [float(b[:, n].mean()) for n in POSITIONS]
            gain, se = mean_se(b[:, 0] - b[:, 19])
            ok &= all(u > v for u, v in zip(at, at[1:])) and gain > 2 * se
            base = [float(bpd["TP no flow"][split][:, n].mean()) for n in POSITIONS]
            parts.append(
                f"{split}: TP {', '.join(f'{v:.3f}' for v in at)} (drop {gain:.3f} ± {se:.3f} SE); "
                f"no-flow TP {', '.join(f'{v:.2f}' for v in base)}"
            )
        q = "/".join(f"{100 * v:.0f}%" for v in QUANTILES)
        claim.decide(
            "; ".join(parts) + f" at n = 0, 1, 4, 19 ({len(runs)} seed(s) pooled)",
            ok,
            conclusive=enough,
            note=f"{p.flow} flow, {metrics['parameters']['TP']} parameters, kept steps "
            f"{metrics['best_step']['TP']} of {p.steps} (early stopping on validation); process "
            f"learning rate x{p.process_lr_mult:g}; learnt corr rho/v quantiles {q} per seed: TP "
            f"{self._corr_text(corr['TP'])}, GP {self._corr_text(corr['GP'])}, no flow "
            f"{self._corr_text(corr['TP no flow'])} (init 0.1).",
        )

    @staticmethod
    def _decide_tp_gp(claim: Claim, bpd: dict, runs: list, metrics: dict, enough: bool) -> None:
        diff, diff_se = mean_se(bpd["GP"]["unseen"].mean(1) - bpd["TP"]["unseen"].mean(1))
        tp_u, gp_u = float(bpd["TP"]["unseen"].mean()), float(bpd["GP"]["unseen"].mean())
        tp_s, gp_s = float(bpd["TP"]["seen"].mean()), float(bpd["GP"]["seen"].mean())
        nu = torch.cat([r["models"]["TP"].process.nu.detach().cpu() for r in runs])
        claim.decide(
            f"unseen: TP {tp_u:.3f} vs GP {gp_u:.3f} bits/dim (GP - TP = {diff:.3f} ± {diff_se:.3f} SE); "
            f"seen: TP {tp_s:.3f} vs GP {gp_s:.3f}",
            diff > 0,
            conclusive=enough and abs(diff) > 2 * diff_se,
            note=f"learnt nu: median {float(nu.median()):.0f}, min {float(nu.min()):.0f} (init 1000).",
        )
        metrics.update(
            tp_unseen=tp_u,
            gp_unseen=gp_u,
            tp_seen=tp_s,
            gp_seen=gp_s,
            gp_minus_tp_unseen=diff,
            gp_minus_tp_unseen_se=diff_se,
            nu_median=float(nu.median()),
        )

    @staticmethod
    def _decide_few_shot(claim: Claim, runs: list, metrics: dict, p: BrunoPreset) -> None:
        acc = {
            f"{m}_{k}shot": sum(r["shots"][k]["bruno" if m == "tp" else "nn"] for r in runs) / len(runs)
            for k in (1, 5)
            for m in ("tp", "nn")
        }
        acc["per_seed"] = [{f"{k}shot": r["shots"][k] for k in (1, 5)} for r in runs]
        metrics["few_shot_unseen_5way"] = acc
        ok = (
            acc["tp_1shot"] >= 0.5
            and acc["tp_5shot"] >= 0.7
            and acc["tp_5shot"] > acc["tp_1shot"]
            and acc["tp_1shot"] >= acc["nn_1shot"] - 0.05
            and acc["tp_5shot"] >= acc["nn_5shot"] - 0.05
        )
        queries = 5 * p.episodes * len(runs)
        half = 1.96 * math.sqrt(0.25 / queries)
        claim.decide(
            f"5-way 1-shot {acc['tp_1shot']:.3f}, 5-shot {acc['tp_5shot']:.3f} (pixel NN {acc['nn_1shot']:.3f}, "
            f"{acc['nn_5shot']:.3f}); ± {half:.3f} at most (95%), {queries} queries each",
            ok,
            conclusive=p.steps >= 300 and p.episodes >= 200,
            note="support and query dequantized with U(0, 1) noise, as the official code's test iterator does.",
        )

    @staticmethod
    def _decide_samples(claim: Claim, runs: list, metrics: dict, p: BrunoPreset) -> None:
        fractions = {split: sum(r["samples"][split][0] for r in runs) / len(runs) for split in ("unseen", "seen")}
        metrics["samples_classified_as_set"] = fractions
        claim.decide(
            f"{100 * fractions['unseen']:.0f}% of samples on unseen-class sets and {100 * fractions['seen']:.0f}% on "
            "seen-class sets classified as the set's class",
            fractions["unseen"] >= 0.5,
            conclusive=p.steps >= 300,
        )
