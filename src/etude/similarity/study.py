"""Study `pwcca`: Morcos, Raghu, Bengio, "Insights on representational similarity in neural networks
with canonical correlation", NeurIPS 2018 (arXiv:1806.05759), with SVCCA (Raghu et al. 2017,
arXiv:1706.05806) and linear CKA (Kornblith et al. 2019, arXiv:1905.00414) alongside.

Wiring only: presets, MLPs on scikit-learn's digits (`etude.similarity.digits`), similarity
matrices (`etude.similarity.pairwise`) and the claims of Sec. 3.1 (generalizing vs memorizing),
Sec. 3.2 (width) and SVCCA's Sec. 4.1 (bottom-up convergence).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from etude.errors import BadInputError
from etude.similarity.digits import TrainedNet, load_digits_split, train_mlp
from etude.similarity.pairwise import pairwise
from etude.similarity.plots import plot_by_layer, plot_convergence, plot_matrix, plot_width
from etude.similarity.summary import between_groups, spearman, within_group
from etude.studies.protocol import Claim, Result, Study

__all__ = ["PwccaPreset", "PwccaStudy"]

METRICS = {"pwcca": "PWCCA", "svcca": "SVCCA", "cka": "CKA"}
"""pairwise() metric -> label; every claim but `wider_more_similar` is judged under all three."""
MIN_MEMORIZED, MIN_TEST = 0.95, 0.90
"""Train accuracy that counts as memorized (shuffled labels) and test accuracy that counts as generalizing."""


@dataclass(frozen=True)
class PwccaPreset:
    """Sizes of the PWCCA study; every network is an MLP 64 -> width x depth -> 10 with ReLUs."""

    nets_per_group: int = 5
    """Networks trained on true labels (generalizing), and as many on one shuffled labelling (memorizing)."""
    width: int = 128
    """Hidden width of the group networks."""
    depth: int = 3
    """Hidden layers per network; each is compared."""
    epochs_true: int = 40
    """Epochs on true labels (group and width networks)."""
    epochs_shuffled: int = 150
    """Epochs on shuffled labels (memorizing needs more)."""
    lr: float = 3e-3
    """Adam step size, every network."""
    batch_size: int = 256
    """Minibatch size, every network."""
    widths: tuple[int, ...] = (16, 32, 64, 128, 256)
    """Widths of the width sweep (n_train = 1,438 >= 5 x 256, so CCA stays in its n >= 5p regime)."""
    width_seeds: int = 3
    """Networks per width, trained and untrained (the control)."""
    snapshots: tuple[int, ...] = (1, 2, 4, 8, 16)
    """Epochs after which the true-label group networks are compared with their final selves."""
    test_fraction: float = 0.2
    """Share of the 1,797 digits held out for test accuracy."""


def _pair_sd(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


class PwccaStudy(Study):
    """Generalizing vs memorizing networks, width and depth, under PWCCA, SVCCA and CKA."""

    name = "pwcca"
    title = "Insights on representational similarity in neural networks with canonical correlation (PWCCA)"
    citation = ("Morcos, Raghu, Bengio. NeurIPS 2018. arXiv:1806.05759 (with SVCCA, Raghu et al., NeurIPS 2017, "
                "arXiv:1706.05806, and CKA, Kornblith et al., ICML 2019, arXiv:1905.00414)")
    threads = 1
    presets = {
        "smoke": PwccaPreset(nets_per_group=2, width=32, epochs_true=2, epochs_shuffled=2, widths=(8, 16),
                             width_seeds=2, snapshots=(1,)),
        "quick": PwccaPreset(),
        "full": PwccaPreset(nets_per_group=10, epochs_true=100, epochs_shuffled=400, width_seeds=6,
                            snapshots=(1, 2, 4, 8, 16, 32, 64)),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim("gen_more_similar",
                  "On training data, networks trained on true labels (generalizing) are more similar to each other "
                  "than networks that memorize one shuffled labelling, in every hidden layer, under PWCCA, SVCCA "
                  "and CKA.",
                  "Morcos et al. 2018 Fig. 2 (CIFAR-10 CNNs): generalizing nets more similar, the gap growing with "
                  "depth; pilot (papers.md): PWCCA 0.85/0.89/0.93 vs 0.79/0.73/0.81, CKA 0.96/0.94/0.93 vs "
                  "0.84/0.65/0.63",
                  "mean gen-gen similarity > mean mem-mem similarity in each hidden layer under each of PWCCA, "
                  "SVCCA and CKA (all 3 x depth comparisons); needs >= 3 nets per group, memorizing nets at >= 95% "
                  "train accuracy and generalizing nets at >= 90% test accuracy"),
            Claim("wider_more_similar",
                  "Wider networks converge to more similar representations, beyond what untrained networks of "
                  "the same widths show.",
                  "Morcos et al. 2018 Fig. 4: PWCCA distance falls as width grows; pilot (papers.md): trained "
                  "PWCCA 0.72 -> 0.90 over widths while untrained stays 0.33-0.45",
                  "Spearman rank correlation of width with mean trained PWCCA similarity (over hidden layers and "
                  "seed pairs) >= 0.9, and the trained rise from narrowest to widest > the untrained control's "
                  "rise; needs >= 4 widths, >= 3 seeds per width and trained nets at >= 90% test accuracy"),
            Claim("lower_layers_more_similar",
                  "Across random seeds, lower layers are more similar to each other than higher layers.",
                  "Raghu et al. 2017 Sec. 4.1 and Morcos et al. 2018 Sec. 3.1: lower layers converge to similar "
                  "representations (papers.md: 'lower layers converge first')",
                  "mean gen-gen similarity strictly decreases from each hidden layer to the next under each of "
                  "PWCCA, SVCCA and CKA; needs >= 3 generalizing nets at >= 90% test accuracy"),
            Claim("bottom_up",
                  "During training, lower layers reach their final representation before higher layers.",
                  "Raghu et al. 2017 Sec. 4.1, Fig. 4: 'networks converge bottom up'",
                  "similarity of each hidden layer to its own final representation, averaged over the snapshot "
                  "epochs and the generalizing nets, strictly decreases with depth under each of PWCCA, SVCCA and "
                  "CKA; needs >= 3 nets and >= 3 snapshot epochs before the last"),
        ]

    @staticmethod
    def _check(preset: PwccaPreset) -> None:
        if preset.nets_per_group < 2 or preset.width_seeds < 2:
            raise BadInputError(f"nets_per_group and width_seeds must be >= 2 (pairs are compared), got "
                                f"{preset.nets_per_group} and {preset.width_seeds}")
        if preset.depth < 1 or not preset.widths or preset.epochs_true < 1 or preset.epochs_shuffled < 1:
            raise BadInputError("depth, widths, epochs_true and epochs_shuffled must be positive / non-empty")

    def run(self, preset: PwccaPreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        self._check(preset)
        out_dir = Path(out_dir)
        ckpt = out_dir / "checkpoints"
        claims = {c.id: c for c in self.claims()}
        timings: dict[str, float] = {}
        data = load_digits_split(preset.test_fraction, seed=seed)
        shuffled = data.shuffled_labels(seed + 7919)
        probe = data.x_train  # "on training data"
        common = dict(lr=preset.lr, batch_size=preset.batch_size, x_test=data.x_test, y_test=data.y_test,
                      resume=resume)
        base = seed * 10_000
        g, depth = preset.nets_per_group, preset.depth

        # 1. two groups of networks: true labels (with snapshots) and one shuffled labelling
        start = time.perf_counter()
        gen = [train_mlp([preset.width] * depth, data.x_train, data.y_train, seed=base + i, epochs=preset.epochs_true,
                         snapshots=preset.snapshots, checkpoint=ckpt / f"true_{i}.pt", desc=f"true labels {i + 1}/{g}",
                         **common) for i in range(g)]
        mem = [train_mlp([preset.width] * depth, data.x_train, shuffled, seed=base + 100 + i,
                         epochs=preset.epochs_shuffled, checkpoint=ckpt / f"shuffled_{i}.pt",
                         desc=f"shuffled labels {i + 1}/{g}", **common) for i in range(g)]
        timings["train_groups_s"] = time.perf_counter() - start

        start = time.perf_counter()
        reps = [net.representations(probe) for net in gen + mem]
        gen_idx, mem_idx = range(g), range(g, 2 * g)
        by_layer: dict[str, dict[str, list[tuple[float, float]]]] = {}
        top_matrix = None
        for metric, label in METRICS.items():
            groups: dict[str, list[tuple[float, float]]] = {"gen-gen": [], "mem-mem": [], "gen-mem": []}
            for layer in range(depth):
                s = pairwise([r[layer] for r in reps], metric)
                groups["gen-gen"].append(within_group(s, gen_idx))
                groups["mem-mem"].append(within_group(s, mem_idx))
                groups["gen-mem"].append(between_groups(s, gen_idx, mem_idx))
                if metric == "pwcca" and layer == depth - 1:
                    top_matrix = s
            by_layer[label] = groups
        timings["group_similarity_s"] = time.perf_counter() - start
        gen_test = float(np.mean([n.test_accuracy for n in gen]))
        mem_train = float(np.mean([n.train_accuracy for n in mem]))
        gaps = {label: [gg[0] - mm[0] for gg, mm in zip(st["gen-gen"], st["mem-mem"])]
                for label, st in by_layer.items()}
        failing = [f"{label} layer {i + 1}" for label, v in gaps.items() for i, d in enumerate(v) if d <= 0]
        claims["gen_more_similar"].decide(
            "; ".join(f"{label} gen/mem by layer " + ", ".join(f"{gg[0]:.3f}/{mm[0]:.3f}" for gg, mm in
                                                               zip(st["gen-gen"], st["mem-mem"]))
                      for label, st in by_layer.items())
            + f" (gen test acc {gen_test:.3f}, mem train acc {mem_train:.3f}, {g} nets per group)",
            not failing, conclusive=g >= 3 and mem_train >= MIN_MEMORIZED and gen_test >= MIN_TEST,
            note=("gen-gen not above mem-mem in: " + ", ".join(failing)) if failing else "")

        decreasing = {label: all(a[0] > b[0] for a, b in zip(st["gen-gen"], st["gen-gen"][1:]))
                      for label, st in by_layer.items()}
        claims["lower_layers_more_similar"].decide(
            "; ".join(f"{label} gen-gen by layer " + ", ".join(f"{m:.3f}" for m, _ in st["gen-gen"])
                      + (" (decreasing)" if decreasing[label] else " (not decreasing)")
                      for label, st in by_layer.items()),
            all(decreasing.values()), conclusive=g >= 3 and gen_test >= MIN_TEST,
            note=("decreasing under " + (", ".join(k for k, v in decreasing.items() if v) or "no metric")
                  + "; not under " + (", ".join(k for k, v in decreasing.items() if not v) or "any")))

        # 2. bottom-up convergence: each layer at a snapshot against its final self
        start = time.perf_counter()
        epochs = sorted(e for e in set(preset.snapshots) if 0 < e < preset.epochs_true)
        convergence: dict[str, list[list[float]]] = {label: [[0.0] * len(epochs) for _ in range(depth)]
                                                     for label in METRICS.values()}
        for net, final in zip(gen, reps[:g]):
            for k, epoch in enumerate(epochs):
                early = net.representations(probe, epoch)
                for layer in range(depth):
                    for metric, label in METRICS.items():
                        s = pairwise([early[layer], final[layer]], metric)
                        convergence[label][layer][k] += (s[0, 1] + s[1, 0]) / 2 / g
        timings["convergence_s"] = time.perf_counter() - start
        area = {label: [float(np.mean(v)) if v else float("nan") for v in layers]
                for label, layers in convergence.items()}
        bottom_up = {label: all(a > b for a, b in zip(v, v[1:])) for label, v in area.items()}
        claims["bottom_up"].decide(
            "; ".join(f"{label} mean similarity to final by layer " + ", ".join(f"{v:.3f}" for v in values)
                      for label, values in area.items()) + f" (epochs {epochs} of {preset.epochs_true})",
            all(bottom_up.values()), conclusive=g >= 3 and len(epochs) >= 3,
            note="decreasing with depth under " + (", ".join(k for k, v in bottom_up.items() if v) or "no metric"))

        # 3. width sweep, trained and untrained
        start = time.perf_counter()
        width_stats: dict[str, list[tuple[float, float]]] = {"trained PWCCA": [], "untrained PWCCA": [],
                                                              "trained CKA": [], "untrained CKA": []}
        width_test = []
        for wi, width in enumerate(preset.widths):
            seeds = [base + 1000 + 100 * wi + s for s in range(preset.width_seeds)]
            for kind, epochs_w in (("trained", preset.epochs_true), ("untrained", 0)):
                nets: list[TrainedNet] = [
                    train_mlp([width] * depth, data.x_train, data.y_train, seed=s, epochs=epochs_w,
                              checkpoint=ckpt / f"width{width}_{kind}_{s - seeds[0]}.pt",
                              desc=f"width {width} seed {s - seeds[0] + 1}/{len(seeds)}", **common)
                    for s in seeds]
                if kind == "trained":
                    width_test.append(float(np.mean([n.test_accuracy for n in nets])))
                width_reps = [n.representations(probe) for n in nets]
                for metric, label in (("pwcca", "PWCCA"), ("cka", "CKA")):
                    values = []
                    for layer in range(depth):
                        s = pairwise([r[layer] for r in width_reps], metric)
                        values += [s[i, j] for i in range(len(nets)) for j in range(len(nets)) if i != j]
                    width_stats[f"{kind} {label}"].append(_pair_sd(values))
        timings["width_sweep_s"] = time.perf_counter() - start
        trained = [m for m, _ in width_stats["trained PWCCA"]]
        untrained = [m for m, _ in width_stats["untrained PWCCA"]]
        rank = spearman(list(preset.widths), trained)
        rise, control_rise = trained[-1] - trained[0], untrained[-1] - untrained[0]
        claims["wider_more_similar"].decide(
            f"trained PWCCA by width {list(preset.widths)}: " + ", ".join(f"{v:.3f}" for v in trained)
            + f" (Spearman {rank:.2f}, rise {rise:+.3f}); untrained: " + ", ".join(f"{v:.3f}" for v in untrained)
            + f" (rise {control_rise:+.3f}); trained test acc by width " + ", ".join(f"{a:.3f}" for a in width_test),
            rank >= 0.9 and rise > control_rise,
            conclusive=len(preset.widths) >= 4 and preset.width_seeds >= 3 and float(np.mean(width_test)) >= MIN_TEST,
            note="" if rise > control_rise else
            "untrained networks' similarity rises at least as much with width as trained ones': the width effect "
            "measured here is not specific to training")

        artifacts = [
            plot_by_layer(by_layer, out_dir / "similarity_by_layer.png",
                          f"digits MLPs, {g} true-label (gen) vs {g} shuffled-label (mem) nets; mean ± sd over pairs"),
            plot_width(list(preset.widths), width_stats, out_dir / "similarity_by_width.png",
                       f"width sweep, {preset.width_seeds} seeds per width", ylabel="similarity across seeds"),
            plot_convergence(epochs, convergence, out_dir / "convergence.png",
                             "true-label nets: each layer against its final representation"),
            plot_matrix(top_matrix, [f"gen{i}" for i in range(g)] + [f"mem{i}" for i in range(g)],
                        out_dir / "pwcca_top_layer.png", f"PWCCA, hidden layer {depth} (row: weights from)"),
        ]
        metrics = {
            "n_train": int(len(data.x_train)), "n_test": int(len(data.x_test)),
            "gen_test_accuracy": gen_test, "gen_train_accuracy": float(np.mean([n.train_accuracy for n in gen])),
            "mem_train_accuracy": mem_train, "mem_test_accuracy": float(np.mean([n.test_accuracy for n in mem])),
            "by_layer": {label: {grp: [m for m, _ in v] for grp, v in st.items()} for label, st in by_layer.items()},
            "gen_minus_mem": gaps,
            "convergence_epochs": epochs, "convergence_by_layer": area,
            "widths": list(preset.widths), "width_test_accuracy": width_test,
            "width_similarity": {k: [m for m, _ in v] for k, v in width_stats.items()},
            "width_spearman": rank, "timings_s": timings,
        }
        return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics,
                      artifacts=[p.name for p in artifacts])
