"""Study `pwcca`: Morcos, Raghu, Bengio, "Insights on representational similarity in neural networks
with canonical correlation", NeurIPS 2018 (arXiv:1806.05759), with SVCCA (Raghu et al. 2017,
arXiv:1706.05806) and linear CKA (Kornblith et al. 2019, arXiv:1905.00414) alongside.

Wiring only: presets, the experiments of `etude.similarity.experiments` (MLPs and CNNs on
scikit-learn's digits), the criteria of `etude.similarity.criteria` and the claims of Sec. 3.1
(generalizing vs memorizing), Sec. 3.2 (width on a fixed top-layer subset; similarity against test
accuracy), Sec. 3.3 (learning-rate clusters) and SVCCA's Sec. 4.1 (bottom-up convergence).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from etude.errors import BadInputError
from etude.runtime import is_rank_zero
from etude.similarity import criteria
from etude.similarity.digits import load_image_split
from etude.similarity.experiments import (
    bottom_up_convergence,
    cnn_by_layer,
    generalizing_vs_memorizing,
    learning_rate_clusters,
    study_metrics,
    train_networks,
    width_sweep,
)
from etude.similarity.plots import study_plots
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["PwccaPreset", "PwccaStudy"]


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
    width_subset: int = 16
    """Units of the fixed random subset of the top hidden layer compared across widths (Morcos et al.
    footnote 8, Fig. A7: a fixed number of filters, so that width does not change the compared size)."""
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
    permutations: int = 999
    """Shuffles of the learning-rate labels in the clusters' permutation test."""
    dataset: str = "digits"
    """The images: 'digits' (scikit-learn's bundled 8x8 digits), 'fashion-mnist', 'mnist' (28x28) or 'cifar10'
    (3x32x32), read by `etude.data`."""
    data_dir: str = ""
    """Where the dataset is looked for first (``--data-dir``); '' = ``$ETUDE_DATA``, the cache, the Debian folder."""
    train_size: int = field(default=0, metadata={"etude": {"low": 0, "high": 100_000}})
    """Training images taken (seeded) from an `etude.data` set's training split; 0 = all."""
    test_size: int = field(default=0, metadata={"etude": {"low": 0, "high": 100_000}})
    """Test images taken (seeded) from its test split; 0 = all."""
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
            width_subset=4,
            permutations=99,
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
            dataset="cifar10",  # Morcos et al. Sec. 3.1-3.3 trained on CIFAR-10
        ),
    }

    def datasets(self, preset: PwccaPreset) -> tuple[str, ...]:
        from etude.data.use import BUNDLED, check_dataset
        from etude.similarity.digits import IMAGE_DATASETS

        check_dataset("dataset", preset.dataset, IMAGE_DATASETS)
        return () if preset.dataset == BUNDLED else (preset.dataset,)

    def claims(self) -> list[Claim]:
        return [
            Claim(
                "gen_more_similar",
                "Morcos et al. 2018 Sec. 3.1, Fig. 3: networks that generalize converge to more similar representations than networks that "
                "memorize (randomized labels), the gap growing in later layers; here: in every hidden layer, on "
                "training data, under PWCCA, SVCCA and CKA.",
                "Morcos et al. 2018 Sec. 3.1, Fig. 3 (CIFAR-10 CNNs, PWCCA distance per layer: generalizing "
                "groups more similar than memorizing ones)",
                "mean gen-gen similarity > mean mem-mem similarity in each hidden layer under each of PWCCA, "
                "SVCCA and CKA (all 3 x depth comparisons); needs >= 3 nets per group, memorizing nets at >= 95% "
                "train accuracy and generalizing nets at >= 90% test accuracy",
            ),
            Claim(
                "wider_more_similar",
                "Morcos et al. 2018 Sec. 3.2, Fig. 4, footnote 8: wider networks converge to more similar solutions; compared on a fixed number of the top "
                "layer's units, so that the compared size does not grow with width.",
                "Morcos et al. 2018 Sec. 3.2, Fig. 4 (PWCCA distance across seeds falls with width), footnote 8 and "
                "Fig. A7 (a fixed random subset of the top layer's filters; untrained networks as the control)",
                "PWCCA similarity across seeds of one fixed random 16-unit subset of the top hidden layer "
                "(width_subset): Spearman rank correlation with width >= 0.9, and the trained rise from narrowest "
                "to widest > the untrained control's rise; all-unit figures are reported beside it; needs >= 4 "
                "widths, >= 3 seeds per width and trained nets at >= 90% test accuracy",
            ),
            Claim(
                "bottom_up",
                "Raghu et al. 2017 Sec. 4.1, Fig. 4: networks converge bottom up: during training, lower layers reach their final "
                "representation before higher layers.",
                "Raghu et al. 2017 Sec. 4.1, Fig. 4 ('networks converge bottom up'); Morcos et al. 2018 Sec. 4 "
                "finds the same for RNNs",
                "similarity of each hidden layer to its own final representation, averaged over the snapshot "
                "epochs and the generalizing nets, strictly decreases with depth under each of PWCCA, SVCCA and "
                "CKA; needs >= 3 nets and >= 3 snapshot epochs before the last",
            ),
            Claim(
                "lr_clusters",
                "Morcos et al. 2018 Sec. 3.3: networks with identical topology trained with different learning rates converge to "
                "distinct clusters of representations.",
                "Morcos et al. 2018 Sec. 3.3 (200 CIFAR-10 CNNs, PWCCA distances of one late layer, layer "
                "8 of 11, group by learning rate)",
                "at the preregistered late hidden layer round(8 depth / 11) (layer 2 of 3): clustering the PWCCA "
                "distances (average linkage, this project's choice) into as many clusters as learning rates gives "
                "an adjusted Rand index >= 0.5 against the learning rates, a permutation p-value < 0.05 (999 "
                "shuffles of the labels) and an ARI above that of 1-D k-means on final test accuracy; every layer "
                "is reported beside it; needs >= 3 learning rates and >= 3 nets each",
            ),
            Claim(
                "similarity_tracks_accuracy",
                "Morcos et al. 2018 Sec. 3.2, Fig. 4: across widths, a network's similarity to its peers tracks its test accuracy.",
                "Morcos et al. 2018 Sec. 3.2, Fig. 4 (PWCCA distance and test accuracy strongly correlated across "
                "widths)",
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
        data = load_image_split(
            p.dataset, p.test_fraction, seed, data_dir=p.data_dir, train_size=p.train_size, test_size=p.test_size
        )
        start = time.perf_counter()
        nets = train_networks(p, data, seed, out_dir / "checkpoints", resume, fabric)
        timings: dict[str, float] = {"train_s": time.perf_counter() - start}
        if not is_rank_zero(fabric):  # the other ranks trained along; rank 0 compares, decides and writes
            return Result(self.name, "", seed, claims=list(claims.values()))
        probe, g = data.x_train, p.nets_per_group  # "on training data"
        groups = generalizing_vs_memorizing(p, nets["gen"], nets["mem"], probe, timings)
        claims["gen_more_similar"].decide(
            **criteria.gen_more_similar(groups["by_layer"], g, groups["gen_test"], groups["mem_train"])
        )
        cnn = cnn_by_layer(p, nets["cnn"], probe, timings)  # reported beside the claims: no paper claim on it
        conv = bottom_up_convergence(p, groups["gen"], probe, timings)
        claims["bottom_up"].decide(**criteria.bottom_up(conv["by_layer"], conv["epochs"], g, p.epochs_true))
        width = width_sweep(p, nets["width"], probe, timings, seed)
        st, sub = width["stats"], width["subset"]
        claims["wider_more_similar"].decide(**criteria.wider_more_similar(
            p.widths, [m for m, _ in st[f"trained {sub}"]], [m for m, _ in st[f"untrained {sub}"]], width["test"],
            p.width_seeds, p.width_subset, ([m for m, _ in st["trained PWCCA"]], [m for m, _ in st["untrained PWCCA"]]),
        ))  # fmt: skip
        claims["similarity_tracks_accuracy"].decide(
            **criteria.similarity_tracks_accuracy(width["tracks"], width["accuracies"])
        )
        lrs = learning_rate_clusters(nets["lr"], probe, seed, timings, p.permutations)
        c, layer = lrs["clusters"], criteria.late_layer(p.depth)
        claims["lr_clusters"].decide(
            **criteria.lr_clusters(c["by_layer"], layer, c["ari_accuracy"], len(p.learning_rates), p.lr_seeds)
        )
        artifacts = study_plots(p, out_dir, groups, cnn, conv, width, lrs, layer)
        metrics = study_metrics(p, data, groups, cnn, conv, width, lrs, layer, timings)
        return Result(
            self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=[a.name for a in artifacts]
        )
