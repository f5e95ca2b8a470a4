"""Study `transformer_ae`: Choi et al., "Encoding Musical Style with Transformer Autoencoders", ICML 2020.

Wiring only: presets, models of `etude.music.autoencoder` trained by `etude.music.training`,
sampled by `etude.music.generate`, and the claims of Secs. 5.1-5.3 measured on held-out Bach
chorales (split by piece) played in sampled styles.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from etude.errors import BadInputError
from etude.music.autoencoder import TransformerAutoencoder
from etude.music.corpus import load_scores, play, split_of
from etude.music.criteria import (
    IN_RANGE,
    MARGIN,
    MIN_PAIRS,
    SMALL,
    better_rule,
    ci_text,
    direction_rule,
    interval_rule,
    nll_gain,
    paired_interval,
    range_rule,
    style_nll_rule,
)
from etude.music.events import PerformanceEncoding
from etude.music.experiments import (
    interpolation,
    oa_experiment,
    plot_first,
    style_direction,
    style_transfer,
    training_pitch_range,
)
from etude.music.metrics import pitch_range_fraction
from etude.music.previews import write_midi_previews
from etude.music.training import Crops, fit, make_crops, nll_per_crop
from etude.music.transformer import TransformerConfig
from etude.runtime import is_rank_zero, resolve_device
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["TransformerAePreset", "TransformerAeStudy"]

# model name -> (conditioning, combine, pool, relative, absolute); every model adds sinusoidal positions
# (tensor2tensor's timing signal, kept beside relative attention by magenta's Music Transformer hparams)
MODELS = {
    "unconditional": ("none", "sum", True, True, True),
    "absolute": ("none", "sum", True, False, True),
    "performance": ("performance", "sum", True, True, True),
    "unpooled": ("performance", "sum", False, True, True),
    "melody": ("melody", "sum", True, True, True),
    "melody+perf sum": ("melody+performance", "sum", True, True, True),
    "melody+perf concat": ("melody+performance", "concat", True, True, True),
    "melody+perf tile": ("melody+performance", "tile", True, True, True),
}


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
    decide_copying: bool = False
    """Big enough to decide unpooled_copies (quick's 250 steps of 64-token crops are not: inconclusive)."""
    transfer_pairs: int = 3
    """Held-out pairs of "melody of A in the style of B" written as MIDI and audio."""
    interpolation_pairs: int = 4
    """Held-out scores whose loud/fast and soft/slow style vectors are interpolated (alpha 0, 0.5, 1)."""
    augment: bool = True
    """Transpose -3..+3 and stretch 0.95-1.05 each training crop."""
    samples: int = 4
    """Held-out crops (OA) and held-out scores (style direction) conditioned on; claims need >= 16."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus size for sampling."""
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
            augment=False,
            transfer_pairs=1,
            interpolation_pairs=1,
        ),
        "quick": TransformerAePreset(),
        # sized by timing (1 thread): a step of 8 x 255 tokens takes 0.2-0.3 s with one other job on the 2 cores
        # (about 1 s at load average 6); 8 models at seed 0, the two of style_lowers_nll again at seed 1
        "long": TransformerAePreset(
            pieces=80,
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
            seed_models=("unconditional", "performance"),
            samples=16,
            decide_copying=True,
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
            device="auto",
            precision="bf16-mixed",
            decide_copying=True,
        ),
    }

    def claims(self) -> list[Claim]:
        ci = "the 95% t interval of the paired difference"
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
                "unpooled NLL <= 0.5 x pooled 'performance' NLL; decided only by presets big enough to learn copying "
                "(long, full)",
            ),
            Claim(
                "relative_beats_absolute",
                "Relative attention beats absolute positions at equal steps.",
                "relative attention lowers validation NLL against absolute positions (Huang et al. 2018, Music Transformer, arXiv:1809.04281, Sec. 5)",
                f"{ci} NLL(absolute) - NLL(unconditional, relative) over held-out crops: holds above 0, fails below; "
                f"a mean gap < {SMALL} with 1 seed is inconclusive",
            ),
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
                f"over >= {MIN_PAIRS} held-out scores, each played loud/fast and soft/slow over one span in seconds: "
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
        ]

    def run(
        self, preset: TransformerAePreset, seed: int, out_dir: Path, resume: bool = False, fabric: Fabric | None = None
    ) -> Result:
        """Train every model (on ``fabric``'s devices and ranks when given), then decide the claims on rank 0."""
        out_dir = Path(out_dir)
        started = time.perf_counter()
        claims = {c.id: c for c in self.claims()}
        device = resolve_device(preset.device) if fabric is None else fabric.device
        held, train_data, eval_data, n_train = _data(preset, seed)
        per_crop, curves, models = _train_models(preset, seed, out_dir, resume, fabric, device, train_data, eval_data)
        counts = (eval_data.performance != PerformanceEncoding.PAD).sum(1).numpy()
        per_seed = {n: [float(np.sum(v * counts) / counts.sum()) for v in s] for n, s in per_crop.items()}
        metrics: dict = {
            "nll_nats_per_token": {n: float(np.mean(v)) for n, v in per_seed.items()},
            "nll_per_seed": per_seed,
            "train_crops": len(train_data),
            "eval_crops": len(eval_data),
            "train_pieces": n_train,
            "held_out_pieces": len(held),
            "final_train_loss": {n: float(np.mean(c[-10:])) for n, c in curves.items() if c},
        }
        if not is_rank_zero(fabric):  # the other ranks trained along; rank 0 samples, decides and writes
            return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics)
        enough = preset.steps >= 100
        metrics["nll_claims"] = self._nll_claims(claims, per_crop, preset, enough)
        artifacts = self._generation_claims(
            claims, metrics, models, held, preset, seed, out_dir, device, enough, training_pitch_range(train_data)
        )
        artifacts.append(_plot_curves(curves, out_dir / "training_loss.png"))
        metrics["run_seconds_before_report"] = round(time.perf_counter() - started, 1)
        for name in [a for a in artifacts if a.endswith(".mid")]:
            write_midi_previews(out_dir / name)  # the report embeds these, and imports no domain package
        return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=artifacts)

    @staticmethod
    def _nll_claims(
        claims: dict[str, Claim], per_crop: dict[str, list[np.ndarray]], preset: TransformerAePreset, enough: bool
    ) -> dict[str, object]:
        out: dict[str, object] = {}
        gain = nll_gain(per_crop["unconditional"], per_crop["performance"])
        holds, conclusive = style_nll_rule(gain, enough)
        out["style_lowers_nll"] = gain
        claims["style_lowers_nll"].decide(
            f"NLL gap unconditional - performance {ci_text(gain)} nats/token over {gain['n']} crops, "
            f"{len(gain['seed_gaps'])} seed(s) (per seed {', '.join(f'{g:+.3f}' for g in gain['seed_gaps'])})",
            holds,
            conclusive=conclusive,
        )
        combos = {c: nll_gain(per_crop["melody"], per_crop[f"melody+perf {c}"]) for c in ("sum", "concat", "tile")}
        rules = {c: better_rule(g, enough) for c, g in combos.items()}
        out["melody_plus_performance"] = combos
        claims["melody_plus_performance"].decide(
            "NLL gap melody-only - combination: "
            + "; ".join(f"{c} {ci_text(g)}" for c, g in combos.items())
            + " nats/token",
            all(h for h, _ in rules.values()),
            conclusive=all(c for _, c in rules.values()) or any(c and not h for h, c in rules.values()),
            note="best combination: " + max(combos, key=lambda c: combos[c]["mean"]),
        )
        pooled, unpooled = (float(np.mean(per_crop[n][0])) for n in ("performance", "unpooled"))
        ratio = unpooled / pooled
        out["unpooled_ratio"] = ratio
        claims["unpooled_copies"].decide(
            f"unpooled {unpooled:.3f} vs pooled {pooled:.3f} nats/token (mean over crops, seed 0; ratio {ratio:.2f})",
            ratio <= 0.5,
            conclusive=enough and preset.decide_copying,
        )
        gain = nll_gain(per_crop["absolute"], per_crop["unconditional"])
        holds, conclusive = better_rule(gain, enough)
        out["relative_beats_absolute"] = gain
        claims["relative_beats_absolute"].decide(
            f"NLL gap absolute - relative {ci_text(gain)} nats/token over {gain['n']} crops",
            holds,
            conclusive=conclusive,
        )
        return out

    @staticmethod
    def _generation_claims(
        claims, metrics, models, held, preset, seed, out_dir, device, enough, pitch_range: tuple[int, int]
    ) -> list[str]:
        oa = oa_experiment(models, held, preset, seed, out_dir, device)
        artifacts = oa["artifacts"] + plot_first(
            {k: v[0] for k, v in oa["generated"].items()}, out_dir, f"held-out {held[0][0].name}"
        )
        diff = paired_interval(np.subtract(oa["oa"]["performance"], oa["oa"]["unconditional"]))
        holds, conclusive = interval_rule(diff, min_n=MIN_PAIRS)
        metrics["oa"] = {**{k: float(np.mean(v)) for k, v in oa["oa"].items()}, "difference": diff}
        claims["oa_conditioned"].decide(
            f"OA conditioned {metrics['oa']['performance']:.3f} vs unconditioned {metrics['oa']['unconditional']:.3f}, "
            f"paired difference {ci_text(diff)}; ceiling {metrics['oa']['ceiling']:.3f} "
            f"(over {diff['n']} held-out crops)",
            holds,
            conclusive=enough and conclusive,
            note=f"OA over {oa['window']['window']:g} s windows (hop {oa['window']['hop']:g} s) "
            f"of {preset.seconds:g} s crops",
        )

        sd = style_direction(models["performance"], held, preset, seed, out_dir, device)
        artifacts += sd["artifacts"]
        dv = paired_interval(np.subtract(sd["velocity"]["loud_fast"], sd["velocity"]["soft_slow"]))
        dd = paired_interval(np.subtract(sd["density"]["loud_fast"], sd["density"]["soft_slow"]))
        holds, conclusive = direction_rule(dv, dd)
        metrics["style_direction"] = {
            "velocity": {k: float(np.nanmean(v)) for k, v in sd["velocity"].items()},
            "notes_per_second": {k: float(np.nanmean(v)) for k, v in sd["density"].items()},
            "velocity_difference": dv,
            "notes_per_second_difference": dd,
            "span_seconds": {"min": float(np.min(sd["span_seconds"])), "max": float(np.max(sd["span_seconds"]))},
        }
        claims["style_direction"].decide(
            f"loud/fast - soft/slow: velocity {ci_text(dv)}, notes/s {ci_text(dd)} over {dv['n']} held-out scores "
            f"(spans {np.min(sd['span_seconds']):.1f}-{np.max(sd['span_seconds']):.1f} s, equal per pair)",
            holds,
            conclusive=enough and conclusive,
        )

        low, high = pitch_range
        generated = oa["generated"]["performance"] + sd["generated"]
        fraction = pitch_range_fraction(generated, low, high)
        notes = sum(len(p) for p in generated)
        holds, conclusive = range_rule(fraction, notes)
        metrics["pitch_in_range"] = {
            "training_range": [low, high],
            "fraction": fraction,
            "notes": notes,
            "unconditional_fraction": pitch_range_fraction(oa["generated"]["unconditional"], low, high),
        }
        claims["pitch_in_range"].decide(
            f"{fraction:.1%} of {notes} generated notes in the training range {low}..{high} "
            f"(unconditional: {metrics['pitch_in_range']['unconditional_fraction']:.1%})",
            holds,
            conclusive=enough and conclusive,
        )

        best = min(("sum", "concat", "tile"), key=lambda c: metrics["nll_nats_per_token"][f"melody+perf {c}"])
        transfer = style_transfer(
            models[f"melody+perf {best}"], held, preset, seed, out_dir, device, pairs=preset.transfer_pairs
        )
        inter = interpolation(
            models[f"melody+perf {best}"], held, preset, seed, out_dir, device, pairs=preset.interpolation_pairs
        )
        metrics["style_transfer"] = {"model": f"melody+perf {best}", "pairs": transfer["pairs"]}
        metrics["interpolation"] = {
            "model": f"melody+perf {best}",
            "alpha": inter["alpha"],
            "velocity": inter["velocity"],
            "notes_per_second": inter["notes_per_second"],
            "per_pair": inter["per_pair"],
        }
        return artifacts + transfer["artifacts"] + inter["artifacts"]


def _data(preset: TransformerAePreset, seed: int) -> tuple[list, Crops, Crops, int]:
    """Held-out (score, piece) pairs, training and evaluation crops, and the number of training pieces."""
    scores, _ = load_scores("bach", limit=preset.pieces or None, show_progress=False)
    pieces = [play(s, seed, split_of(s.name)) for s in scores]
    train = [p for p in pieces if p.split == "train"]
    held = [(s, p) for s, p in zip(scores, pieces) if p.split != "train"]
    if not train or not held:
        raise BadInputError(
            f"{preset.pieces} pieces give {len(train)} training and {len(held)} held-out pieces; "
            "raise the preset's 'pieces'"
        )
    train_data = make_crops(
        train,
        seconds=preset.seconds,
        max_tokens=preset.max_tokens,
        per_piece=preset.per_piece,
        seed=seed,
        augment=preset.augment,
    )
    eval_data = make_crops(
        [p for _, p in held],
        seconds=preset.seconds,
        max_tokens=preset.max_tokens,
        per_piece=preset.eval_per_piece,
        seed=seed + 1,
    )
    return held, train_data, eval_data, len(train)


def _train_models(preset, seed, out_dir, resume, fabric, device, train_data, eval_data):
    """Train MODELS (seed 0) and ``preset.seed_models`` at the later seeds; per-crop held-out NLLs per seed."""
    unknown = set(preset.seed_models) - set(MODELS)
    if unknown:
        raise BadInputError(f"seed_models must name models of {sorted(MODELS)}, got {sorted(unknown)}")
    cfg = TransformerConfig(
        vocab_size=PerformanceEncoding().vocab_size,
        dim=preset.dim,
        heads=preset.heads,
        layers=preset.layers,
        ff=preset.ff,
        max_len=preset.max_tokens,
        dropout=preset.dropout,
    )
    train_data, eval_data = train_data.to(device), eval_data.to(device)  # once, for every model and seed
    per_crop: dict[str, list[np.ndarray]] = {name: [] for name in MODELS}
    curves: dict[str, list[float]] = {}
    models: dict[str, TransformerAutoencoder] = {}
    for s in range(preset.seeds):
        for name, (cond, combine, pool, relative, absolute) in MODELS.items():
            if s > 0 and preset.seed_models and name not in preset.seed_models:
                continue
            torch.manual_seed(zlib.crc32(f"{seed}/{s}/{name}".encode()))
            mcfg = TransformerConfig(**{**asdict(cfg), "relative": relative, "absolute": absolute})
            model = TransformerAutoencoder(mcfg, cond, combine, pool, encoder_layers=preset.encoder_layers).to(device)
            tag = name.replace("+", "_").replace(" ", "_")
            losses = fit(
                model,
                train_data,
                steps=preset.steps,
                batch_size=preset.batch_size,
                lr=preset.lr,
                seed=seed * 1000 + s,
                checkpoint=out_dir / "checkpoints" / f"{tag}_s{s}.pt",
                resume=resume,
                desc=f"{name} seed {s}",
                fabric=fabric,
            )
            per_crop[name].append(nll_per_crop(model, eval_data))
            if s == 0:
                curves[name], models[name] = losses, model
    return per_crop, curves, models


def _plot_curves(curves: dict[str, list[float]], path: Path) -> str:
    from etude.runtime.figures import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, c in curves.items():
        ax.plot(c, label=name, lw=1)
    ax.set(xlabel="step", ylabel="training NLL (nats/token)", title="transformer_ae: training loss, seed 0")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=110)
    return path.name
