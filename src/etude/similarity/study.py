"""Study `pwcca`: Morcos, Raghu, Bengio, "Insights on representational similarity in neural networks
with canonical correlation", NeurIPS 2018 (arXiv:1806.05759), with SVCCA (Raghu et al. 2017,
arXiv:1706.05806) and linear CKA (Kornblith et al. 2019, arXiv:1905.00414) alongside.

Wiring only: presets, the experiments of `etude.similarity.experiments` (MLPs and CNNs on
scikit-learn's digits) and the claims of Sec. 3.1 (generalizing vs memorizing), Sec. 3.2 (width,
similarity against test accuracy), Sec. 3.3 (learning-rate clusters) and SVCCA's Sec. 4.1 (lower
layers; bottom-up convergence).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from etude.errors import BadInputError
from etude.runtime import is_rank_zero
from etude.similarity.digits import Digits, load_digits_split
from etude.similarity.experiments import (
    bottom_up_convergence,
    cnn_by_layer,
    generalizing_vs_memorizing,
    learning_rate_clusters,
    train_networks,
    width_sweep,
)
from etude.similarity.plots import plot_by_layer, plot_convergence, plot_matrix, plot_width
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["PwccaPreset", "PwccaStudy"]

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
    cnn_channels: tuple[int, ...] = (16, 16, 16)
    """Channels of the CNN case (3x3 convolutions on the 8x8 image), as many nets as nets_per_group."""
    cnn_probe: int = 400
    """Training images whose 64 positions each are the CNN layers' datapoints (n = 64 x cnn_probe)."""
    learning_rates: tuple[float, ...] = (3e-4, 3e-3, 3e-2)
    """Adam step sizes of the learning-rate clusters (true labels, width x depth MLPs)."""
    lr_seeds: int = 4
    """Networks per learning rate."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'auto' (cuda when available); anything but 'cpu' trains through Fabric, as its accelerator."""
    precision: str = "32-true"
    """Fabric precision of training; '32-true' in full too: at 8x8 digits and widths <= 256 bf16 buys no speed,
    and it would change the networks whose representations the claims compare."""


class PwccaStudy(Study):
    """Generalizing vs memorizing networks, width and depth, under PWCCA, SVCCA and CKA."""

    name = "pwcca"
    title = "Insights on representational similarity in neural networks with canonical correlation (PWCCA)"
    citation = (
        "Morcos, Raghu, Bengio. NeurIPS 2018. arXiv:1806.05759 (with SVCCA, Raghu et al., NeurIPS 2017, "
        "arXiv:1706.05806, and CKA, Kornblith et al., ICML 2019, arXiv:1905.00414)"
    )
    threads = 1
    trains_with_fabric = True
    presets = {
        "smoke": PwccaPreset(
            nets_per_group=2,
            width=32,
            epochs_true=2,
            epochs_shuffled=2,
            widths=(8, 16),
            width_seeds=2,
            snapshots=(1,),
            cnn_channels=(4, 4),
            cnn_probe=50,
            learning_rates=(1e-3, 1e-2),
            lr_seeds=2,
        ),
        "quick": PwccaPreset(),
        "long": PwccaPreset(
            nets_per_group=8,
            epochs_true=60,
            epochs_shuffled=300,
            width_seeds=5,
            snapshots=(1, 2, 4, 8, 16, 32),
            lr_seeds=6,
        ),
        "full": PwccaPreset(
            nets_per_group=10,
            epochs_true=100,
            epochs_shuffled=400,
            width_seeds=6,
            snapshots=(1, 2, 4, 8, 16, 32, 64),
            lr_seeds=8,
            device="auto",
        ),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim(
                "gen_more_similar",
                "On training data, networks trained on true labels (generalizing) are more similar to each other "
                "than networks that memorize one shuffled labelling, in every hidden layer, under PWCCA, SVCCA "
                "and CKA.",
                "Morcos et al. 2018 Sec. 3.1, Fig. 2 (CIFAR-10 CNNs): generalizing nets more similar, the gap "
                "growing with depth",
                "mean gen-gen similarity > mean mem-mem similarity in each hidden layer under each of PWCCA, "
                "SVCCA and CKA (all 3 x depth comparisons); needs >= 3 nets per group, memorizing nets at >= 95% "
                "train accuracy and generalizing nets at >= 90% test accuracy",
            ),
            Claim(
                "wider_more_similar",
                "Wider networks converge to more similar representations, beyond what untrained networks of "
                "the same widths show.",
                "Morcos et al. 2018 Sec. 3.2, Fig. 4: PWCCA distance falls as width grows",
                "Spearman rank correlation of width with mean trained PWCCA similarity (over hidden layers and "
                "seed pairs) >= 0.9, and the trained rise from narrowest to widest > the untrained control's "
                "rise; needs >= 4 widths, >= 3 seeds per width and trained nets at >= 90% test accuracy",
            ),
            Claim(
                "lower_layers_more_similar",
                "Across random seeds, lower layers are more similar to each other than higher layers (MLPs).",
                "Raghu et al. 2017 Sec. 4.1 and Morcos et al. 2018 Sec. 3.1 (conv nets): lower layers converge to "
                "similar representations",
                "mean gen-gen similarity strictly decreases from each hidden layer to the next under each of "
                "PWCCA, SVCCA and CKA; needs >= 3 generalizing nets at >= 90% test accuracy",
            ),
            Claim(
                "lower_layers_more_similar_cnn",
                "Across random seeds, lower layers of CNNs are more similar to each other than higher layers.",
                "Raghu et al. 2017 Sec. 4.1 and Morcos et al. 2018 Sec. 3.1 (conv nets): lower layers converge to "
                "similar representations",
                "same rule as lower_layers_more_similar on CNNs (3x3 convolutions, each channel a neuron, each "
                "image position a datapoint); needs >= 3 nets at >= 90% test accuracy",
            ),
            Claim(
                "bottom_up",
                "During training, lower layers reach their final representation before higher layers.",
                "Raghu et al. 2017 Sec. 4.1, Fig. 4: 'networks converge bottom up'",
                "similarity of each hidden layer to its own final representation, averaged over the snapshot "
                "epochs and the generalizing nets, strictly decreases with depth under each of PWCCA, SVCCA and "
                "CKA; needs >= 3 nets and >= 3 snapshot epochs before the last",
            ),
            Claim(
                "lr_clusters",
                "Networks trained on the same data with different learning rates cluster by learning rate under "
                "PWCCA distance.",
                "Morcos et al. 2018 Sec. 3.3 (CIFAR-10 CNNs: hierarchical clustering of pairwise PWCCA distances "
                "recovers the learning-rate groups)",
                "adjusted Rand index of average-linkage clustering of the PWCCA distance (mean over hidden layers) "
                "into as many clusters as learning rates, against the learning rates, >= 0.5 and above the ARI of "
                "1-D k-means on final test accuracy; needs >= 3 learning rates and >= 3 nets each",
            ),
            Claim(
                "similarity_tracks_accuracy",
                "A network's similarity to its peers on training data tracks its test accuracy.",
                "Morcos et al. 2018 Sec. 3.2, Fig. 4: across widths, PWCCA distance and test accuracy are "
                "strongly anti-correlated",
                "Spearman rank correlation over the trained width-sweep nets of (mean PWCCA similarity to the "
                "same width's other seeds, over hidden layers) with test accuracy >= 0.5; needs >= 10 nets",
            ),
        ]

    @staticmethod
    def _check(preset: PwccaPreset) -> None:
        if preset.nets_per_group < 2 or preset.width_seeds < 2 or preset.lr_seeds < 2:
            raise BadInputError(
                f"nets_per_group, width_seeds and lr_seeds must be >= 2 (pairs are compared), got "
                f"{preset.nets_per_group}, {preset.width_seeds} and {preset.lr_seeds}"
            )
        if preset.depth < 1 or not preset.widths or preset.epochs_true < 1 or preset.epochs_shuffled < 1:
            raise BadInputError("depth, widths, epochs_true and epochs_shuffled must be positive / non-empty")
        if len(preset.learning_rates) < 2 or not preset.cnn_channels:
            raise BadInputError("learning_rates needs >= 2 values and cnn_channels >= 1 layer")

    def run(
        self, preset: PwccaPreset, seed: int, out_dir: Path, resume: bool = False, fabric: Fabric | None = None
    ) -> Result:
        """Train every network (on ``fabric``'s devices and ranks when given), then compare and decide on rank 0."""
        self._check(preset)
        p, out_dir = preset, Path(out_dir)
        claims = {c.id: c for c in self.claims()}
        data = load_digits_split(p.test_fraction, seed=seed)
        start = time.perf_counter()
        nets = train_networks(p, data, seed, out_dir / "checkpoints", resume, fabric)
        timings: dict[str, float] = {"train_s": time.perf_counter() - start}
        if not is_rank_zero(fabric):  # the other ranks trained along; rank 0 compares, decides and writes
            return Result(self.name, "", seed, claims=list(claims.values()))
        probe = data.x_train  # "on training data"
        g = p.nets_per_group

        groups = generalizing_vs_memorizing(p, nets["gen"], nets["mem"], probe, timings)
        gaps = self._decide_gen_mem(
            claims["gen_more_similar"], groups["by_layer"], g, groups["gen_test"], groups["mem_train"]
        )
        self._decide_lower(claims["lower_layers_more_similar"], groups["by_layer"], g, groups["gen_test"])
        cnn = cnn_by_layer(p, nets["cnn"], probe, timings)
        self._decide_lower(
            claims["lower_layers_more_similar_cnn"],
            cnn["stats"],
            g,
            cnn["test"],
            what=f"CNN {list(p.cnn_channels)} channels, test acc {cnn['test']:.3f}; ",
        )
        convergence = bottom_up_convergence(p, groups["gen"], probe, timings)
        area = self._decide_bottom_up(claims["bottom_up"], convergence["by_layer"], convergence["epochs"], g, p)
        width = width_sweep(p, nets["width"], probe, timings)
        self._decide_width(claims["wider_more_similar"], width, p)
        self._decide_tracks(claims["similarity_tracks_accuracy"], width)
        lrs = learning_rate_clusters(nets["lr"], probe, seed, timings)
        self._decide_clusters(claims["lr_clusters"], lrs["clusters"], p)

        artifacts = self._plots(p, out_dir, groups, cnn, convergence, width, lrs)
        metrics = self._metrics(p, data, groups, gaps, cnn, convergence, area, width, lrs, timings)
        return Result(
            self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=[a.name for a in artifacts]
        )

    @staticmethod
    def _plots(
        p: PwccaPreset, out_dir: Path, groups: dict, cnn: dict, convergence: dict, width: dict, lrs: dict
    ) -> list[Path]:
        g = p.nets_per_group
        return [
            plot_by_layer(
                groups["by_layer"],
                out_dir / "similarity_by_layer.png",
                f"digits MLPs, {g} true-label (gen) vs {g} shuffled-label (mem) nets; mean ± sd over pairs",
            ),
            plot_by_layer(
                cnn["stats"],
                out_dir / "cnn_similarity_by_layer.png",
                f"digits CNNs {list(p.cnn_channels)}, {g} seeds; mean ± sd over pairs",
            ),
            plot_width(
                list(p.widths),
                width["stats"],
                out_dir / "similarity_by_width.png",
                f"width sweep, {p.width_seeds} seeds per width",
                ylabel="similarity across seeds",
            ),
            plot_convergence(
                convergence["epochs"],
                convergence["by_layer"],
                out_dir / "convergence.png",
                "true-label nets: each layer against its final representation",
            ),
            plot_matrix(
                groups["matrices"]["PWCCA"][-1],
                [f"gen{i}" for i in range(g)] + [f"mem{i}" for i in range(g)],
                out_dir / "pwcca_top_layer.png",
                f"PWCCA, hidden layer {p.depth} (row: weights from)",
            ),
            plot_matrix(
                1 - np.asarray(lrs["clusters"]["distance"]),
                [f"{lr:g}/{i}" for lr, nets in lrs["by_lr"].items() for i in range(len(nets))],
                out_dir / "pwcca_learning_rates.png",
                "1 - PWCCA distance, nets by learning rate/seed",
            ),
        ]

    @staticmethod
    def _metrics(
        p: PwccaPreset,
        data: Digits,
        groups: dict,
        gaps: dict,
        cnn: dict,
        convergence: dict,
        area: dict,
        width: dict,
        lrs: dict,
        timings: dict[str, float],
    ) -> dict[str, Any]:
        gen, mem, by_layer, clusters = groups["gen"], groups["mem"], groups["by_layer"], lrs["clusters"]
        return {
            "n_train": int(len(data.x_train)),
            "n_test": int(len(data.x_test)),
            "gen_test_accuracy": groups["gen_test"],
            "gen_train_accuracy": float(np.mean([n.train_accuracy for n in gen])),
            "mem_train_accuracy": groups["mem_train"],
            "mem_test_accuracy": float(np.mean([n.test_accuracy for n in mem])),
            "by_layer": {label: {grp: [m for m, _ in v] for grp, v in st.items()} for label, st in by_layer.items()},
            "gen_minus_mem": gaps,
            "cnn_test_accuracy": cnn["test"],
            "cnn_by_layer": {label: [m for m, _ in st["gen-gen"]] for label, st in cnn["stats"].items()},
            "convergence_epochs": convergence["epochs"],
            "convergence_by_layer": area,
            "widths": list(p.widths),
            "width_test_accuracy": width["test"],
            "width_similarity": {k: [m for m, _ in v] for k, v in width["stats"].items()},
            "width_spearman": width["rank"],
            "similarity_vs_accuracy_spearman": width["tracks"],
            "lr_clusters": {k: v for k, v in clusters.items() if k != "distance"},
            "timings_s": timings,
        }

    # -- verdicts (criteria as stated in claims()) --------------------------------------------------

    @staticmethod
    def _decide_gen_mem(claim: Claim, by_layer: dict, g: int, gen_test: float, mem_train: float) -> dict:
        gaps = {
            label: [gg[0] - mm[0] for gg, mm in zip(st["gen-gen"], st["mem-mem"])] for label, st in by_layer.items()
        }
        failing = [f"{label} layer {i + 1}" for label, v in gaps.items() for i, d in enumerate(v) if d <= 0]
        claim.decide(
            "; ".join(
                f"{label} gen/mem by layer "
                + ", ".join(f"{gg[0]:.3f}/{mm[0]:.3f}" for gg, mm in zip(st["gen-gen"], st["mem-mem"]))
                for label, st in by_layer.items()
            )
            + f" (gen test acc {gen_test:.3f}, mem train acc {mem_train:.3f}, {g} nets per group)",
            not failing,
            conclusive=g >= 3 and mem_train >= MIN_MEMORIZED and gen_test >= MIN_TEST,
            note=("gen-gen not above mem-mem in: " + ", ".join(failing)) if failing else "",
        )
        return gaps

    @staticmethod
    def _decide_lower(claim: Claim, by_layer: dict, g: int, test: float, what: str = "") -> None:
        decreasing = {
            label: all(a[0] > b[0] for a, b in zip(st["gen-gen"], st["gen-gen"][1:])) for label, st in by_layer.items()
        }
        claim.decide(
            what
            + "; ".join(
                f"{label} gen-gen by layer "
                + ", ".join(f"{m:.3f}" for m, _ in st["gen-gen"])
                + (" (decreasing)" if decreasing[label] else " (not decreasing)")
                for label, st in by_layer.items()
            ),
            all(decreasing.values()),
            conclusive=g >= 3 and test >= MIN_TEST,
            note=(
                "decreasing under "
                + (", ".join(k for k, v in decreasing.items() if v) or "no metric")
                + "; not under "
                + (", ".join(k for k, v in decreasing.items() if not v) or "any")
            ),
        )

    @staticmethod
    def _decide_bottom_up(claim: Claim, convergence: dict, epochs: list[int], g: int, p: PwccaPreset) -> dict:
        area = {
            label: [float(np.mean(v)) if v else float("nan") for v in layers] for label, layers in convergence.items()
        }
        bottom_up = {label: all(a > b for a, b in zip(v, v[1:])) for label, v in area.items()}
        claim.decide(
            "; ".join(
                f"{label} mean similarity to final by layer " + ", ".join(f"{v:.3f}" for v in values)
                for label, values in area.items()
            )
            + f" (epochs {epochs} of {p.epochs_true})",
            all(bottom_up.values()),
            conclusive=g >= 3 and len(epochs) >= 3,
            note="decreasing with depth under " + (", ".join(k for k, v in bottom_up.items() if v) or "no metric"),
        )
        return area

    @staticmethod
    def _decide_width(claim: Claim, width: dict, p: PwccaPreset) -> None:
        trained = [m for m, _ in width["stats"]["trained PWCCA"]]
        untrained = [m for m, _ in width["stats"]["untrained PWCCA"]]
        rank = width["rank"]
        rise, control_rise = trained[-1] - trained[0], untrained[-1] - untrained[0]
        claim.decide(
            f"trained PWCCA by width {list(p.widths)}: "
            + ", ".join(f"{v:.3f}" for v in trained)
            + f" (Spearman {rank:.2f}, rise {rise:+.3f}); untrained: "
            + ", ".join(f"{v:.3f}" for v in untrained)
            + f" (rise {control_rise:+.3f}); trained test acc by width "
            + ", ".join(f"{a:.3f}" for a in width["test"]),
            rank >= 0.9 and rise > control_rise,
            conclusive=len(p.widths) >= 4 and p.width_seeds >= 3 and float(np.mean(width["test"])) >= MIN_TEST,
            note=""
            if rise > control_rise
            else "untrained networks' similarity rises at least as much with width as trained ones': the width effect "
            "measured here is not specific to training",
        )

    @staticmethod
    def _decide_tracks(claim: Claim, width: dict) -> None:
        n = len(width["peers"])
        claim.decide(
            f"Spearman {width['tracks']:.2f} between peer PWCCA similarity and test accuracy over {n} "
            f"trained width-sweep nets (test acc {min(width['accuracies']):.3f}-"
            f"{max(width['accuracies']):.3f})",
            width["tracks"] >= 0.5,
            conclusive=n >= 10,
        )

    @staticmethod
    def _decide_clusters(claim: Claim, clusters: dict, p: PwccaPreset) -> None:
        ari, base = clusters["ari_pwcca"], clusters["ari_accuracy"]
        acc = clusters["test_accuracy"]
        per_lr = {
            lr: float(np.mean([a for a, t in zip(acc, clusters["truth"]) if t == i]))
            for i, lr in enumerate(clusters["learning_rates"])
        }
        claim.decide(
            f"ARI {ari:.2f} (PWCCA clustering) vs {base:.2f} (k-means on test accuracy) over "
            f"{len(acc)} nets; test accuracy by learning rate "
            + ", ".join(f"{lr:g}: {a:.3f}" for lr, a in per_lr.items()),
            ari >= 0.5 and ari > base,
            conclusive=len(p.learning_rates) >= 3 and p.lr_seeds >= 3,
            note=f"clusters {clusters['clusters']} against learning-rate groups {clusters['truth']}",
        )
