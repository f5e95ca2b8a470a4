"""Study `transformer_ae`: Choi et al., "Encoding Musical Style with Transformer Autoencoders", ICML 2020.

Presets, claims and a `run` that names its steps: the steps (data, training, and the measurements
that decide each claim) live in `etude.music.experiments`, the generation experiments in
`etude.music.generations`, and the decision rules, as pure functions, in `etude.music.criteria`.
The claims of Secs. 5.1-5.3 are measured on held-out Bach chorales (split by piece) played in
sampled styles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from etude.music.criteria import (
    COPY_RATIO,
    HELD_TO_END,
    IN_RANGE,
    LIKENESS_RATIOS,
    MARGIN,
    MIN_PAIRS,
    ORPHAN_NOTE_OFFS,
    SMALL,
    VELOCITY_DISTANCE,
)
from etude.music.experiments import (
    decide_generation_claims,
    decide_nll_claims,
    decide_transfer,
    load_data,
    nll_metrics,
    plot_curves,
    train_models,
)
from etude.music.previews import write_midi_previews
from etude.runtime import is_rank_zero, resolve_device
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["TransformerAePreset", "TransformerAeStudy"]


@dataclass(frozen=True)
class TransformerAePreset:
    """Sizes of the transformer_ae study (official: 8 heads, width 384-512, 6-10 layers, length 2048)."""

    pieces: int = 40
    """Bach chorales parsed (the first N by name); 0 means all 408."""
    seconds: float = 2.5
    """Length of each training/evaluation window in seconds."""
    max_tokens: int = 64
    """Decoder length (performance ids per crop + BOS) and the models' max_len."""
    per_piece: int = 8
    """Training crops per training piece."""
    eval_per_piece: int = 6
    """Evaluation crops per held-out piece."""
    dim: int = 64
    """Model width."""
    heads: int = 4
    """Attention heads."""
    layers: int = 2
    """Decoder layers."""
    encoder_layers: int = 1
    """Layers of each encoder."""
    ff: int = 128
    """Feed-forward width."""
    dropout: float = 0.0
    """Dropout (0 in quick: dropout sampling was a quarter of CPU step time)."""
    steps: int = 250
    """Training steps per model (equal for every model)."""
    batch_size: int = 16
    """Crops per step."""
    lr: float = 3e-3
    """Peak Adam learning rate."""
    seeds: int = 1
    """Training seeds (style_lowers_nll needs >= 2; other claims with a difference under 0.05 nats too)."""
    seed_models: tuple[str, ...] = ()
    """Models trained again for the seeds after the first (empty: every model)."""
    workers: int = 1
    """Processes training the models side by side on the CPU, each on the study's one thread (2 in long, for the
    2-core machine); the models and verdicts equal one process's."""
    decide_copying: bool = False
    """Big enough to decide unpooled_copies (quick's 250 steps of 64-token crops are not: inconclusive)."""
    transfer_pairs: int = 3
    """Held-out pairs of "melody of A in the style of B" (style_transfer needs >= 16; the first 3 are written)."""
    direction_scores: int = 4
    """Held-out scores style_direction conditions on (needs >= 16; the long preset uses 64)."""
    interpolation_pairs: int = 4
    """Held-out scores whose loud/fast and soft/slow style vectors are interpolated (alpha 0, 0.5, 1)."""
    augment: bool = True
    """Transpose -3..+3 and stretch 0.95-1.05 each training crop."""
    samples: int = 4
    """Held-out crops conditioned on for OA and music-likeness; oa_conditioned needs >= 16."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus size for sampling."""
    dataset: str = "chorales"
    """'chorales' (music21's Bach chorales played in sampled styles) or 'maestro' (MAESTRO v3's MIDI, its
    official train/test split, melody by skyline; `etude data`); with 'maestro', ``pieces`` caps each split."""
    data_dir: str = ""
    """Where MAESTRO is looked for first (``--data-dir``: ``DIR/maestro-v3.0.0`` or ``DIR``)."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'auto' (cuda when available); through Fabric, its accelerator."""
    precision: str = "32-true"
    """Fabric precision of training ('bf16-mixed' in full); anything but '32-true' on the CPU trains through Fabric."""


class TransformerAeStudy(Study):
    """Style-conditioned Transformer autoencoder vs unconditional, melody-only, unpooled and absolute baselines."""

    name = "transformer_ae"
    title = "Encoding Musical Style with Transformer Autoencoders"
    citation = "Choi, Hawthorne, Simon, Dinculescu, Engel. ICML 2020. arXiv:1912.05537"
    threads = 1  # measured: 2 threads were 10x slower per step than 1 on the shared 2-core machine
    trains_with_fabric = True
    presets = {
        "smoke": TransformerAePreset(
            pieces=6,
            seconds=1.5,
            max_tokens=32,
            per_piece=2,
            eval_per_piece=2,
            dim=16,
            heads=2,
            layers=1,
            ff=32,
            steps=4,
            batch_size=4,
            samples=1,
            direction_scores=1,
            augment=False,
            transfer_pairs=1,
            interpolation_pairs=1,
        ),
        "quick": TransformerAePreset(),
        # sized by timing (1 thread): a step of 8 x 255 tokens takes 0.2-0.3 s with one other job on the 2 cores
        # (about 1 s at load average 6); all 408 chorales (about 80 held out: 64 distinct style-direction scores,
        # 16 transfer pairs of distinct pieces); every model at 2 seeds, since every model enters an NLL claim
        "long": TransformerAePreset(
            pieces=0,
            seconds=8.0,
            max_tokens=256,
            per_piece=8,
            eval_per_piece=4,
            dim=128,
            heads=4,
            layers=3,
            encoder_layers=2,
            ff=384,
            steps=500,
            batch_size=8,
            lr=2e-3,
            seeds=2,
            samples=16,
            direction_scores=64,
            transfer_pairs=16,
            decide_copying=True,
            workers=2,
        ),
        "full": TransformerAePreset(
            pieces=0,
            seconds=40.0,
            max_tokens=1024,
            per_piece=16,
            eval_per_piece=8,
            dim=384,
            heads=8,
            layers=6,
            encoder_layers=6,
            ff=1024,
            dropout=0.1,
            steps=20_000,
            batch_size=16,
            lr=5e-4,
            seeds=2,
            samples=16,
            direction_scores=64,
            transfer_pairs=16,
            device="auto",
            precision="bf16-mixed",
            decide_copying=True,
            dataset="maestro",  # Choi et al. Sec. 4: MAESTRO, its official splits
        ),
    }

    def datasets(self, preset: TransformerAePreset) -> tuple[str, ...]:
        from etude.data.use import check_dataset

        check_dataset("dataset", preset.dataset, ("chorales", "maestro"))
        return ("maestro",) if preset.dataset == "maestro" else ()

    def claims(self) -> list[Claim]:
        return [*_nll_claims(), *_generation_claims()]

    def run(
        self, preset: TransformerAePreset, seed: int, out_dir: Path, resume: bool = False, fabric: Fabric | None = None
    ) -> Result:
        """Train every model (on ``fabric``'s devices and ranks when given), then decide the claims on rank 0."""
        out_dir, started = Path(out_dir), time.perf_counter()
        claims = {c.id: c for c in self.claims()}
        device = resolve_device(preset.device) if fabric is None else fabric.device
        data = load_data(preset, seed)
        trained = train_models(preset, seed, out_dir, resume, fabric, device, data)
        metrics = nll_metrics(trained, data)
        if not is_rank_zero(fabric):  # the other ranks trained along; rank 0 samples, decides and writes
            return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics)
        enough = preset.steps >= 100
        metrics["nll_claims"] = decide_nll_claims(claims, trained.per_crop, preset, enough)
        # the generation and transfer claims play held-out scores in chosen styles: MAESTRO has neither
        steps = (decide_generation_claims, decide_transfer) if preset.dataset == "chorales" else ()
        artifacts = [
            a for step in steps for a in step(claims, metrics, trained, data, preset, seed, out_dir, device, enough)
        ]
        for claim in claims.values() if not steps else ():
            if claim.verdict == "not-run":
                claim.note = f"not run on {preset.dataset}: it plays held-out scores in chosen styles, which it lacks"
        artifacts.append(plot_curves(trained.curves, out_dir / "training_loss.png"))
        metrics["run_seconds_before_report"] = round(time.perf_counter() - started, 1)
        for name in [a for a in artifacts if a.endswith(".mid")]:
            write_midi_previews(out_dir / name)  # the report embeds these, and imports no domain package
        return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=artifacts)


_CI = "the 95% t interval of the paired difference"


def _nll_claims() -> list[Claim]:
    """The claims decided on held-out NLL (Choi et al. Tables 1-2, Sec. 3.2; Huang et al. Sec. 5)."""
    ci = _CI
    return [
        Claim(
            "style_lowers_nll",
            "Conditioning on the pooled performance style lowers held-out NLL.",
            "performance-conditioned NLL below unconditional (Choi et al. Table 1)",
            f"per held-out crop, NLL(unconditional) - NLL(performance), averaged over >= 2 seeds: holds when "
            f"{ci} lies above {MARGIN} nats/token and every seed's gap is > 0, fails when it lies below "
            f"{MARGIN}; 1 seed or fewer than {MIN_PAIRS} crops is inconclusive",
        ),
        Claim(
            "melody_plus_performance",
            "Melody + performance conditioning beats melody-only (sum, concat, tile compared).",
            "melody & performance NLL below melody-only for every combination (Choi et al. Table 2)",
            f"for each of sum/concat/tile, {ci} NLL(melody) - NLL(combination) over held-out crops lies above 0 "
            f"(holds if all do, fails if one lies below 0); a mean gap < {SMALL} with 1 seed is inconclusive",
        ),
        Claim(
            "unpooled_copies",
            "Without mean pooling the autoencoder copies its input.",
            "motivates pooling (Choi et al. Sec. 3.2)",
            f"unpooled NLL <= {COPY_RATIO} x pooled 'performance' NLL (mean over crops and seeds); decided only "
            "by presets big enough to learn copying (long, full)",
        ),
        Claim(
            "relative_beats_absolute",
            "Relative attention beats absolute positions at equal steps.",
            "relative attention lowers validation NLL against absolute positions (Huang et al. 2018, Music Transformer, arXiv:1809.04281, Sec. 5)",
            f"{ci} NLL(absolute) - NLL(unconditional, relative) over held-out crops: holds above 0, fails below; "
            f"a mean gap < {SMALL} with 1 seed is inconclusive",
        ),
    ]


def _generation_claims() -> list[Claim]:
    """The claims decided on generated performances (Choi et al. Table 3, Sec. 5.3, and the project's checks)."""
    ci = _CI
    return [
        Claim(
            "oa_conditioned",
            "Generations conditioned on a performance are more similar (OA) to it than unconditioned ones.",
            "conditioned models score higher OA similarity than unconditioned (Choi et al. Table 3)",
            f"{ci} OA(performance | X, X) - OA(unconditional, X) over >= {MIN_PAIRS} held-out crops X: holds "
            "above 0, fails below; the ceiling is X re-played in its style with fresh timing/velocity noise",
        ),
        Claim(
            "style_direction",
            "A loud/fast conditioning style gives louder, denser generations than a soft/slow one.",
            "style controls generation (Choi et al. Sec. 5.3)",
            f"over >= {MIN_PAIRS} held-out scores (64 in long), each played loud/fast and soft/slow over one "
            "span in seconds: "
            f"holds when {ci} of the generations' mean velocity and of their notes/s both lie above 0, fails "
            "when either lies below 0",
        ),
        Claim(
            "pitch_in_range",
            "Generated notes stay inside the training corpus's pitch range.",
            "not a figure of the paper: the project's own check that samples stay in the training data's register",
            f"at least {IN_RANGE:.0%} of the 'performance' model's generated notes lie within the "
            "lowest..highest "
            "pitch of the (augmented) training crops; fewer than 50 notes is inconclusive",
        ),
        Claim(
            "style_transfer",
            "Melody of A in the style of B is closer to B's velocity and note density than to A's.",
            "the melody & performance autoencoder carries B's style onto A's melody (Choi et al. Sec. 5.3)",
            f"over >= {MIN_PAIRS} pairs of held-out pieces (16 in long), per pair |gen - A| - |gen - B| of mean "
            f"velocity and of notes/s (A: the melody's own performance crop, B: the style's): holds when {ci} "
            "of both lies above 0, fails when either lies below 0",
        ),
        Claim(
            "music_like_data",
            "Generations have the texture of the held-out data, not a wash of sound.",
            "not a figure of the paper: the project's check that samples sound like the music they model",
            "the 'performance' model's generations (conditioned on held-out crops) against the held-out crops "
            f"(decoded alike): polyphony, median note length and median inter-onset interval within a factor "
            f"{LIKENESS_RATIOS['polyphony']:g} of the data's, mean pitch span within a factor "
            f"{LIKENESS_RATIOS['pitch_range']:g}, velocity histograms (8 bins) at total-variation distance "
            f"<= {VELOCITY_DISTANCE}, share of notes held to the end <= {HELD_TO_END[0]:g} x data's + "
            f"{HELD_TO_END[1]}, share of note-offs closing no note <= data's + {ORPHAN_NOTE_OFFS}; fewer than 50 notes "
            "on either side is inconclusive (ratios fixed in etude.music.criteria before any run)",
        ),
    ]
