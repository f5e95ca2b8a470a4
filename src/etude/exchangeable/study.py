"""Study `bruno`: Korshunova et al., "BRUNO: A Deep Recurrent Model for Exchangeable Data", NeurIPS 2018.

Wiring only: presets, claims, and a `run` that names its steps. scikit-learn digits, trained on the
even classes, evaluated on held-out images of the even classes ("seen") and on the odd classes
("unseen"); the claims of Sec. 5 (predictive likelihood, few-shot classification, Student-t against
Gaussian process, conditional samples). The experiments live in `etude.exchangeable.experiments`,
the rules in `etude.exchangeable.criteria`; with ``seeds > 1`` every seed trains its own models on
its own split and the figures pool the seeds' sequences, episodes and sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from etude.exchangeable import criteria
from etude.exchangeable.bruno import FLOWS
from etude.exchangeable.criteria import POSITIONS
from etude.exchangeable.experiments import QUANTILES, all_seeds, pool_seeds
from etude.exchangeable.plots import plot_study
from etude.runtime import resolve_device
from etude.statistics import mean_interval, mean_se, paired_difference
from etude.studies.fields import rule_metadata
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["BrunoPreset", "BrunoStudy"]

OFFICIAL = "official github.com/IraKorshunova/bruno, config_rnn/README.md"
"""Where the official figures of the trained models are listed (test_nll.py and test_few_shot_omniglot.py)."""


@dataclass(frozen=True)
class BrunoPreset:
    """Sizes of the BRUNO study (flow, training, evaluation)."""

    flow: str = field(default="realnvp", metadata=rule_metadata(choices=FLOWS))
    """'realnvp' (multi-scale conv Real NVP), 'dense' (the paper's dense-only MNIST flow) or 'none'."""
    hidden: int = 8
    """Channels (conv) or units (dense) of each coupling network."""
    blocks: int = 1
    """Residual blocks per conv coupling network."""
    layers: int = 4
    """Dense couplings of the dense-flow TP and GP (the paper's protocol for TP against GP)."""
    seq_len: int = 20
    """Images per training sequence (paper: 20)."""
    batch: int = 8
    """Sequences per training step."""
    steps: int = 600
    """Training steps of each flow model (TP and GP, with the preset's flow and with the dense flow)."""
    baseline_steps: int = 600
    """Training steps of the no-flow TP baseline (the process alone on logit pixels)."""
    lr: float = 1e-3
    """AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay on the flow (not the process)."""
    warmup: int = 100
    """Steps with the process parameters frozen (gradient scale 0; paper: 100)."""
    process_scale: float = field(default=0.1, metadata=rule_metadata(low=0, meaning="a gradient scale (0: frozen)"))
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
    dataset: str = "digits"
    """The images: 'digits' (scikit-learn's bundled 8x8 digits), 'mnist', 'fashion-mnist' or 'omniglot' (28x28,
    `etude data`; Omniglot: background characters train, evaluation characters are the unseen few-shot classes)."""
    data_dir: str = ""
    """Where the dataset is looked for first (``--data-dir``); '' = ``$ETUDE_DATA``, the cache, the Debian folder."""
    per_class: int = field(default=0, metadata={"etude": {"low": 0, "high": 100_000}})
    """Images of each class taken (seeded) from MNIST or Fashion-MNIST's training split; 0 = all 6,000."""
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
            dataset="mnist",  # Korshunova et al. Sec. 5: MNIST, 28x28
        ),
    }

    def datasets(self, preset: BrunoPreset) -> tuple[str, ...]:
        from etude.data.use import BUNDLED, check_dataset
        from etude.exchangeable.data import IMAGE_DATASETS

        check_dataset("dataset", preset.dataset, IMAGE_DATASETS)
        return () if preset.dataset == BUNDLED else (preset.dataset,)

    def claims(self) -> list[Claim]:
        size = f"needs >= {criteria.MIN_STEPS} steps and >= {criteria.MIN_SEQUENCES} evaluation sequences"
        shots = f"needs >= {criteria.MIN_STEPS} steps and >= {criteria.MIN_EPISODES} episodes"
        return [
            Claim(
                "bpd_falls",
                "Predictive bits/dim falls as the number of conditioning images grows, on seen and on unseen classes.",
                "paper Sec. 5 (MNIST, odd digits unseen): the negative log-likelihood of image n+1 falls with the "
                "number n of conditioning images, on seen and unseen digits (official config_rnn/"
                "test_probs_evolution.py computes it per position)",
                "TP model's mean bits/dim strictly decreasing over n = 0, 1, 4, 19 on both seen and unseen "
                f"classes, and bpd(0) - bpd(19) > 2 standard errors (paired over sequences) on each ({size})",
            ),
            Claim(
                "few_shot",
                "The predictive density of a query given each class's support set classifies unseen classes "
                "(5-way, 1 and 5 shots), better with 5 shots than with 1.",
                "Omniglot few-shot table (paper Sec. 5), TP, mean of two seeds: 5-way 1-shot 0.863, 5-shot 0.957 "
                f"(per seed 0.881/0.844 and 0.966/0.947, {OFFICIAL})",
                "TP per-episode accuracy on unseen classes: the 95% t interval of 1-shot lies above "
                f"{criteria.FEW_SHOT_FLOORS[1]} and of 5-shot above {criteria.FEW_SHOT_FLOORS[5]}, and the 95% "
                "interval of 5-shot - 1-shot above 0; fails when one lies wholly below its bound, otherwise "
                f"inconclusive ({shots}); pixel nearest neighbour is reported as a sanity figure, not the claim",
            ),
            Claim(
                "few_shot_gp",
                "A Gaussian-process BRUNO classifies unseen classes about as well as the Student-t one.",
                f"Omniglot 5-way: GP 0.865 (1-shot), 0.961 (5-shot) against TP 0.863, 0.957 ({OFFICIAL})",
                "GP - TP per-episode accuracy on the same unseen-class episodes (the preset's flow), at 1 and 5 "
                f"shots: holds if both paired 95% intervals lie inside -+{criteria.GP_MARGIN}, fails if one lies "
                f"wholly outside it, otherwise inconclusive ({shots})",
            ),
            Claim(
                "tp_beats_gp",
                "With a dense-only flow, the Student-t process fits unseen classes better than the Gaussian process.",
                "dense-only MNIST flow trained on even digits, odd digits unseen: TP 1.715 vs GP 1.867 bits/dim "
                f"(paper Sec. 5; {OFFICIAL}, en2_noconv_mnist_even_tp/gp); with a convolutional flow the two tie "
                "(dn2_mnist_even: TP 1.045, GP 1.044)",
                "dense-flow TP and GP, unseen classes, mean bits/dim over all 20 positions, paired over the same "
                f"sequences: holds if GP - TP > 2 SE, fails if TP - GP > 2 SE, otherwise inconclusive ({size}); "
                "the preset's flow reported beside it",
            ),
            Claim(
                "samples_match_set",
                "Samples conditioned on a set look like the set.",
                "qualitative (paper Sec. 5: samples conditioned on a set share its class and style)",
                "per unseen-class conditioning set, the fraction of its samples that a 5-nearest-neighbour pixel "
                "classifier (all ten digits, conditioning images left out) assigns to the set's class (chance "
                f"10%): holds if the 95% t interval of the mean over sets lies above {criteria.SAMPLE_FLOOR}, "
                f"fails if below, otherwise inconclusive (needs >= {criteria.MIN_STEPS} steps); grid: "
                "samples_unseen.png, samples_seen.png",
            ),
        ]

    def run(
        self, preset: BrunoPreset, seed: int, out_dir: Path, resume: bool = False, fabric: Fabric | None = None
    ) -> Result:
        """Train every model (on ``fabric``'s devices and ranks when given), then evaluate and decide on rank 0."""
        out_dir, p = Path(out_dir), preset
        device = resolve_device(p.device) if fabric is None else fabric.device
        runs = all_seeds(p, seed, device, out_dir, resume, fabric)  # 1. train and measure, every seed
        if not runs:  # the other ranks trained along; rank 0 evaluates, decides and writes
            return Result(self.name, "", seed, claims=self.claims())
        out_dir.mkdir(parents=True, exist_ok=True)
        pooled = pool_seeds(runs)  # 2. pool the seeds' sequences, episodes and sets
        claims = {c.id: c for c in self.claims()}
        metrics = _judge(claims, pooled, p, device)  # 3. the fixed criteria
        artifacts = plot_study(runs[0], pooled["bpd"], out_dir)  # 4. figures
        return Result(
            self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=[a.name for a in artifacts]
        )


def _nums(values: list[float], digits: int = 3) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def _ci(values: object) -> str:
    mean, low, high = mean_interval(values)
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def _judge(claims: dict[str, Claim], pooled: dict, p: BrunoPreset, device: object) -> dict:
    """Decide every claim with `etude.exchangeable.criteria` on the pooled figures; returns the metrics."""
    bpd = pooled["bpd"]
    enough = p.steps >= criteria.MIN_STEPS and p.eval_sequences >= criteria.MIN_SEQUENCES
    metrics: dict = {
        "device": str(device),
        "seeds": pooled["seeds"],
        "parameters": pooled["parameters"],
        "best_step": pooled["best_step"],
        "best_val_nats_per_dim": pooled["best_val"],
        "corr_quantiles": {"quantiles": list(QUANTILES), **pooled["corr"]},
        "bits_per_dim": {
            label: {split: [round(float(v), 4) for v in b.mean(0)] for split, b in d.items()}
            for label, d in bpd.items()
        },
    }
    _judge_bpd(claims["bpd_falls"], pooled, p, metrics, enough)
    _judge_tp_gp(claims["tp_beats_gp"], pooled, p, metrics, enough)
    _judge_few_shot(claims, pooled, p, metrics)
    _judge_samples(claims["samples_match_set"], pooled, p, metrics)
    return metrics


def _judge_bpd(claim: Claim, pooled: dict, p: BrunoPreset, metrics: dict, enough: bool) -> None:
    bpd, corr = pooled["bpd"], pooled["corr"]
    parts = []
    for split in ("seen", "unseen"):
        b = bpd["TP"][split]
        gain, se = mean_se(b[:, 0] - b[:, 19])
        base = [float(bpd["TP no flow"][split][:, n].mean()) for n in POSITIONS]
        parts.append(
            f"{split}: TP {_nums([float(b[:, n].mean()) for n in POSITIONS])} (drop {gain:.3f} ± {se:.3f} SE); "
            f"no-flow TP {_nums(base, 2)}"
        )
    holds, conclusive = criteria.bpd_rule(bpd["TP"]["seen"], bpd["TP"]["unseen"], enough)
    q = "/".join(f"{100 * v:.0f}%" for v in QUANTILES)
    claim.decide(
        "; ".join(parts) + f" at n = 0, 1, 4, 19 ({len(pooled['seeds'])} seed(s) pooled)",
        holds,
        conclusive=conclusive,
        note=f"{p.flow} flow, {metrics['parameters']['TP']} parameters, kept steps {metrics['best_step']['TP']} of "
        f"{p.steps} (early stopping on validation); process learning rate x{p.process_lr_mult:g}; learnt corr "
        f"rho/v quantiles {q} per seed: "
        + ", ".join(f"{k} {'; '.join('/'.join(f'{v:.3f}' for v in c) for c in corr[k])}" for k in corr)
        + " (init 0.1).",
    )


def _judge_tp_gp(claim: Claim, pooled: dict, p: BrunoPreset, metrics: dict, enough: bool) -> None:
    bpd = pooled["bpd"]
    tp_u = {k: bpd[k]["unseen"].mean(1) for k in ("TP", "GP", "TP dense", "GP dense")}
    diff, diff_se = mean_se(tp_u["GP dense"] - tp_u["TP dense"])
    conv, conv_se = mean_se(tp_u["GP"] - tp_u["TP"])
    holds, conclusive = criteria.tp_beats_gp_rule(tp_u["GP dense"] - tp_u["TP dense"], enough)
    claim.decide(
        f"dense flow, unseen: TP {float(tp_u['TP dense'].mean()):.3f} vs GP {float(tp_u['GP dense'].mean()):.3f} "
        f"bits/dim (GP - TP = {diff:.3f} ± {diff_se:.3f} SE); {p.flow} flow beside it: TP "
        f"{float(tp_u['TP'].mean()):.3f} vs GP {float(tp_u['GP'].mean()):.3f} (GP - TP = {conv:.3f} ± {conv_se:.3f})",
        holds,
        conclusive=conclusive,
        note=f"learnt nu of the dense TP: median {pooled['nu_median']:.0f}, min {pooled['nu_min']:.0f} (init 1000).",
    )
    metrics.update(
        gp_minus_tp_unseen={"dense": [diff, diff_se], p.flow: [conv, conv_se]},
        bits_per_dim_unseen={k: float(v.mean()) for k, v in tp_u.items()},
        nu_median_dense_tp=pooled["nu_median"],
    )


def _judge_few_shot(claims: dict[str, Claim], pooled: dict, p: BrunoPreset, metrics: dict) -> None:
    shots = pooled["shots"]
    enough_shots = p.steps >= criteria.MIN_STEPS and p.episodes >= criteria.MIN_EPISODES
    acc = {f"{k}shot": {m: _ci(v) for m, v in shots[k].items()} for k in (1, 5)}
    metrics["few_shot_unseen_5way"] = {f"{k}shot": {m: float(v.mean()) for m, v in shots[k].items()} for k in (1, 5)}
    holds, conclusive = criteria.few_shot_rule(shots[1]["TP"], shots[5]["TP"], enough_shots)
    claims["few_shot"].decide(
        f"TP 5-way 1-shot {acc['1shot']['TP']}, 5-shot {acc['5shot']['TP']} (mean [95% interval] over "
        f"{len(shots[1]['TP'])} episodes); pixel nearest neighbour (sanity figure) {acc['1shot']['pixel NN']}, "
        f"{acc['5shot']['pixel NN']}",
        holds,
        conclusive=conclusive,
        note="support and query dequantized with U(0, 1) noise, as the official code's test iterator does; "
        "five training classes here against Omniglot's 1,200 background characters.",
    )
    gaps = {k: paired_difference(shots[k]["GP"], shots[k]["TP"]) for k in (1, 5)}
    holds, conclusive = criteria.gp_matches_tp_rule({k: (shots[k]["TP"], shots[k]["GP"]) for k in (1, 5)}, enough_shots)
    claims["few_shot_gp"].decide(
        f"GP 1-shot {acc['1shot']['GP']}, 5-shot {acc['5shot']['GP']}; GP - TP "
        + "; ".join(f"{k}-shot {g[0]:+.3f} [{g[1]:+.3f}, {g[2]:+.3f}]" for k, g in gaps.items()),
        holds,
        conclusive=conclusive,
    )
    metrics["few_shot_gp_minus_tp"] = {f"{k}shot": list(g) for k, g in gaps.items()}


def _judge_samples(claim: Claim, pooled: dict, p: BrunoPreset, metrics: dict) -> None:
    fractions = pooled["samples"]
    holds, conclusive = criteria.samples_rule(fractions["unseen"], p.steps >= criteria.MIN_STEPS)
    claim.decide(
        f"unseen-class sets: {_ci(fractions['unseen'])} of samples in the set's class (mean [95% interval] over "
        f"{len(fractions['unseen'])} sets); seen-class sets: {_ci(fractions['seen'])}",
        holds,
        conclusive=conclusive,
    )
    metrics["samples_classified_as_set"] = {k: [float(v) for v in f] for k, f in fractions.items()}
