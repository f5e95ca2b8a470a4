"""Study `bruno`: Korshunova et al., "BRUNO: A Deep Recurrent Model for Exchangeable Data", NeurIPS 2018.

Wiring only: scikit-learn digits, trained on the even classes, evaluated on held-out images of the
even classes ("seen") and on the odd classes ("unseen"); the claims of Sec. 5 (predictive
likelihood, few-shot classification, Student-t against Gaussian process, conditional samples).
Evaluation images sit at the centre of their grey-level bins (x + 0.5) except for bits/dim, which
uses one fixed uniform dequantization shared by every model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from etude.exchangeable.bruno import Bruno
from etude.exchangeable.data import (
    DIGIT_LEVELS,
    knn_predict,
    load_digit_splits,
    nearest_neighbour_predict,
    sample_episodes,
    sample_sequences,
)
from etude.exchangeable.plots import plot_bits_per_dim, plot_sample_grid, plot_training
from etude.exchangeable.training import TrainLog, train_bruno
from etude.flows import dequantize
from etude.runtime import resolve_device
from etude.studies.protocol import Claim, Result, Study

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
    """Gradient scale of the process parameters after the warm-up (paper: 0.1)."""
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


def _mean_se(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of a 1-d sample."""
    values = values.double()
    return float(values.mean()), float(values.std() / math.sqrt(len(values))) if len(values) > 1 else float("nan")


class BrunoStudy(Study):
    """BRUNO (Real NVP + exchangeable Student-t process) on digits with held-out classes."""

    name = "bruno"
    title = "BRUNO: A Deep Recurrent Model for Exchangeable Data"
    threads = 1
    citation = ("Korshunova, Degrave, Huszar, Gal, Gretton, Dambre. NeurIPS 2018. arXiv:1802.07535")
    presets = {
        "smoke": BrunoPreset(hidden=4, batch=4, steps=12, baseline_steps=12, warmup=4, eval_every=6,
                             val_sequences=4, eval_sequences=8, episodes=8, samples_per_set=4, sets_per_class=1),
        "quick": BrunoPreset(),
        "full": BrunoPreset(hidden=32, blocks=2, batch=32, steps=5000, baseline_steps=3000, eval_every=250,
                            val_sequences=128, eval_sequences=1000, episodes=2000, sets_per_class=4),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim("bpd_falls", "Predictive bits/dim falls as the number of conditioning images grows, on seen "
                  "and on unseen classes.",
                  "pilot (no flow, sklearn digits): 4.8, 4.0, 3.3, 2.9-3.0 at n = 0, 1, 4, 19; unseen 4.8, 4.0, "
                  "3.3, 3.0 (papers.md sec. 5)",
                  "TP model's mean bits/dim strictly decreasing over n = 0, 1, 4, 19 on both seen and unseen "
                  "classes, and bpd(0) - bpd(19) > 2 standard errors (paired over sequences) on each "
                  "(needs >= 300 steps and >= 100 evaluation sequences)"),
            Claim("few_shot", "Conditioning on a support set classifies unseen classes in 5-way 1-shot and 5-shot.",
                  "Omniglot TP 5-way 1-shot 0.863, 5-shot 0.957 (paper, two-seed mean); pilot on digits 0.60-0.63 and "
                  "0.82-0.86, about equal to pixel nearest neighbour",
                  "on unseen classes: 1-shot >= 0.5, 5-shot >= 0.7, 5-shot > 1-shot, and each at most 0.05 below "
                  "the pixel nearest-neighbour baseline (needs >= 300 steps and >= 200 episodes)"),
            Claim("tp_beats_gp", "The Student-t process fits unseen classes better than the Gaussian process.",
                  "dense-only MNIST, odd digits unseen: TP 1.715 vs GP 1.867 bits/dim (paper; papers.md sec. 5)",
                  "unseen classes, mean bits/dim over all 20 positions, paired over the same sequences: holds if "
                  "GP - TP > 2 SE, fails if TP - GP > 2 SE, otherwise inconclusive (needs >= 300 steps and "
                  ">= 100 evaluation sequences)"),
            Claim("samples_match_set", "Samples conditioned on a set look like the set.",
                  "qualitative (paper: samples conditioned on a set share its class and style)",
                  "a 5-nearest-neighbour pixel classifier (all ten digits, conditioning images left out) assigns "
                  ">= 50% of the samples conditioned on an unseen-class set to that class (chance 10%) "
                  "(needs >= 300 steps); grid: samples_unseen.png, samples_seen.png"),
        ]

    def run(self, preset: BrunoPreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        claims = {c.id: c for c in self.claims()}
        splits = load_digit_splits(seed)
        shape = (1, 8, 8)
        device = resolve_device("auto")
        g_val = torch.Generator().manual_seed(seed + 1)
        val = dequantize(sample_sequences(splits.val_x, splits.val_y, preset.val_sequences, preset.seq_len,
                                          g_val)[0], g_val)

        def batches(generator: torch.Generator) -> torch.Tensor:
            return sample_sequences(splits.train_x, splits.train_y, preset.batch, preset.seq_len, generator)[0]

        models: dict[str, Bruno] = {}
        logs: dict[str, TrainLog] = {}
        specs = {"TP": (preset.flow, "tp", preset.steps), "GP": (preset.flow, "gp", preset.steps),
                 "TP no flow": ("none", "tp", preset.baseline_steps)}
        for k, (label, (flow, process, steps)) in enumerate(specs.items()):
            torch.manual_seed(seed * 1000 + k)
            model = Bruno.build(shape, DIGIT_LEVELS, flow=flow, process=process, hidden=preset.hidden,
                                blocks=preset.blocks, layers=preset.layers).to(device)
            tag = label.lower().replace(" ", "_")
            logs[label] = train_bruno(
                model, batches, steps, lr=preset.lr, weight_decay=preset.weight_decay, warmup=preset.warmup,
                process_scale=preset.process_scale, val=val, eval_every=preset.eval_every, seed=seed * 1000 + k,
                checkpoint=out_dir / "checkpoints" / f"{tag}.pt", resume=resume, show_progress=True,
                desc=f"bruno {label}")
            model.eval()
            models[label] = model

        metrics: dict = {"device": str(device),
                         "parameters": {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()},
                         "best_step": {k: log.best_step for k, log in logs.items()},
                         "best_val_nats_per_dim": {k: log.best_val for k, log in logs.items()}}
        corr = {k: float((m.process.rho / m.process.var).detach().median()) for k, m in models.items()}
        metrics["corr_median"] = corr
        enough = preset.steps >= 300 and preset.eval_sequences >= 100

        # (1) and (3): predictive bits/dim on fixed, shared evaluation sequences
        g_eval = torch.Generator().manual_seed(seed + 2)
        evals = {}
        for split, (x, y) in {"seen": (splits.test_x, splits.test_y), "unseen": (splits.unseen_x, splits.unseen_y)}.items():
            evals[split] = dequantize(sample_sequences(x, y, preset.eval_sequences, preset.seq_len, g_eval)[0], g_eval)
        bpd: dict[str, dict[str, torch.Tensor]] = {}
        with torch.no_grad():
            for label, model in models.items():
                bpd[label] = {split: torch.cat([model.bits_per_dim(s.to(device)).cpu() for s in seqs.split(50)])
                              for split, seqs in evals.items()}
        metrics["bits_per_dim"] = {label: {split: [round(float(v), 4) for v in b.mean(0)] for split, b in d.items()}
                                   for label, d in bpd.items()}
        parts, ok = [], True
        for split in ("seen", "unseen"):
            b = bpd["TP"][split]
            at = [float(b[:, n].mean()) for n in POSITIONS]
            gain, se = _mean_se(b[:, 0] - b[:, 19])
            ok &= all(u > v for u, v in zip(at, at[1:])) and gain > 2 * se
            base = [float(bpd["TP no flow"][split][:, n].mean()) for n in POSITIONS]
            parts.append(f"{split}: TP {', '.join(f'{v:.3f}' for v in at)} (drop {gain:.3f} ± {se:.3f} SE); "
                         f"no-flow TP {', '.join(f'{v:.2f}' for v in base)}")
        claims["bpd_falls"].decide("; ".join(parts) + " at n = 0, 1, 4, 19", ok, conclusive=enough,
                                   note=f"{preset.flow} flow, {metrics['parameters']['TP']} parameters, kept step "
                                        f"{logs['TP'].best_step} of {preset.steps} (early stopping on validation); "
                                        f"learnt corr rho/v median {corr['TP']:.3f} (no flow {corr['TP no flow']:.3f}; "
                                        "init 0.1).")

        diff, diff_se = _mean_se(bpd["GP"]["unseen"].mean(1) - bpd["TP"]["unseen"].mean(1))
        tp_u, gp_u = float(bpd["TP"]["unseen"].mean()), float(bpd["GP"]["unseen"].mean())
        tp_s, gp_s = float(bpd["TP"]["seen"].mean()), float(bpd["GP"]["seen"].mean())
        nu = models["TP"].process.nu.detach()
        verdict_known = abs(diff) > 2 * diff_se
        claims["tp_beats_gp"].decide(
            f"unseen: TP {tp_u:.3f} vs GP {gp_u:.3f} bits/dim (GP - TP = {diff:.3f} ± {diff_se:.3f} SE); "
            f"seen: TP {tp_s:.3f} vs GP {gp_s:.3f}", diff > 0, conclusive=enough and verdict_known,
            note=f"learnt nu: median {float(nu.median()):.0f}, min {float(nu.min()):.0f} (init 1000).")
        metrics.update(tp_unseen=tp_u, gp_unseen=gp_u, tp_seen=tp_s, gp_seen=gp_s, gp_minus_tp_unseen=diff,
                       gp_minus_tp_unseen_se=diff_se, nu_median=float(nu.median()))

        # (2) few-shot on unseen classes against pixel nearest neighbour
        g_shot = torch.Generator().manual_seed(seed + 3)
        acc: dict[str, float] = {}
        for shots in (1, 5):
            support, query = sample_episodes(splits.unseen_x, splits.unseen_y, 5, shots, preset.episodes, g_shot)
            target = torch.arange(5).expand(preset.episodes, 5)
            with torch.no_grad():
                pred = torch.cat([models["TP"].classify(s.to(device) + 0.5, q.to(device) + 0.5).argmax(-1).cpu()
                                  for s, q in zip(support.split(50), query.split(50))])
            acc[f"tp_{shots}shot"] = float((pred == target).double().mean())
            acc[f"nn_{shots}shot"] = float((nearest_neighbour_predict(support, query) == target).double().mean())
        metrics["few_shot_unseen_5way"] = acc
        ok = (acc["tp_1shot"] >= 0.5 and acc["tp_5shot"] >= 0.7 and acc["tp_5shot"] > acc["tp_1shot"]
              and acc["tp_1shot"] >= acc["nn_1shot"] - 0.05 and acc["tp_5shot"] >= acc["nn_5shot"] - 0.05)
        half = 1.96 * math.sqrt(0.25 / (5 * preset.episodes))
        claims["few_shot"].decide(
            f"5-way 1-shot {acc['tp_1shot']:.3f}, 5-shot {acc['tp_5shot']:.3f} (pixel NN {acc['nn_1shot']:.3f}, "
            f"{acc['nn_5shot']:.3f}); ± {half:.3f} at most (95%), {5 * preset.episodes} queries each", ok,
            conclusive=preset.steps >= 300 and preset.episodes >= 200)

        # (4) conditional samples, checked by a pixel classifier
        artifacts, fractions = [], {}
        g_sample = torch.Generator().manual_seed(seed + 4)
        for split, (x, y) in {"unseen": (splits.unseen_x, splits.unseen_y), "seen": (splits.test_x, splits.test_y)}.items():
            frac, rows = self._sample_check(models["TP"], x, y, splits, preset, g_sample)
            fractions[split] = frac
            artifacts.append(plot_sample_grid(rows, out_dir / f"samples_{split}.png", DIGIT_LEVELS))
        metrics["samples_classified_as_set"] = fractions
        claims["samples_match_set"].decide(
            f"{100 * fractions['unseen']:.0f}% of samples on unseen-class sets and {100 * fractions['seen']:.0f}% on "
            "seen-class sets classified as the set's class", fractions["unseen"] >= 0.5,
            conclusive=preset.steps >= 300)

        curves = {f"{label} {split}": b.mean(0) for label, d in bpd.items() for split, b in d.items()}
        artifacts.append(plot_bits_per_dim(curves, out_dir / "bits_per_dim.png",
                                           "digits: bits/dim of image n+1 given n images of its class"))
        artifacts.append(plot_training({k: (log.loss, log.val_steps, log.val_loss) for k, log in logs.items()},
                                       out_dir / "training.png"))
        return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics,
                      artifacts=[p.name for p in artifacts])

    @staticmethod
    def _sample_check(model: Bruno, x: torch.Tensor, y: torch.Tensor, splits, preset: BrunoPreset,
                      generator: torch.Generator) -> tuple[float, list]:
        """Fraction of conditional samples a pixel classifier puts in the set's class, and grid rows."""
        sets, rows, hits, total = [], [], 0, 0
        for c in y.unique().tolist():
            idx = torch.nonzero(y == c).squeeze(1)
            for _ in range(preset.sets_per_class):
                sets.append((c, idx[torch.randperm(len(idx), generator=generator)[: preset.context_size]]))
        used = torch.zeros(len(x), dtype=torch.bool)
        for _, idx in sets:
            used[idx] = True
        all_x = torch.cat([splits.train_x, splits.val_x, splits.test_x, splits.unseen_x])
        all_y = torch.cat([splits.train_y, splits.val_y, splits.test_y, splits.unseen_y])
        keep = torch.ones(len(all_x), dtype=torch.bool)
        for img in x[used]:  # leave the conditioning images out of the classifier's reference set
            keep &= ~(all_x == img).flatten(1).all(1)
        for c, idx in sets:
            device = next(model.parameters()).device
            samples = model.sample(x[idx].to(device) + 0.5, preset.samples_per_set, generator).cpu()
            samples = samples.clamp(0, DIGIT_LEVELS - 1e-3)
            pred = knn_predict(all_x[keep], all_y[keep], samples - 0.5, k=5)
            hits += int((pred == c).sum())
            total += len(pred)
            if len(rows) < 10 and not any(r[0] == f"class {c}" for r in rows):
                rows.append((f"class {c}", x[idx][:5], samples[:8]))
        return hits / total, rows
