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
from etude.music.events import PerformanceEncoding
from etude.music.generate import generate
from etude.music.metrics import oa_similarity
from etude.music.plots import plot_piano_roll
from etude.music.previews import write_midi_previews
from etude.music.styles import Style, render
from etude.music.training import crop, fit, make_crops, nll
from etude.music.transformer import TransformerConfig
from etude.runtime import is_rank_zero, resolve_device
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["TransformerAePreset", "TransformerAeStudy"]

# model name -> (conditioning, combine, pool, relative, absolute)
MODELS = {
    "unconditional": ("none", "sum", True, True, False),
    "absolute": ("none", "sum", True, False, True),
    "performance": ("performance", "sum", True, True, False),
    "unpooled": ("performance", "sum", False, True, False),
    "melody": ("melody", "sum", True, True, False),
    "melody+perf sum": ("melody+performance", "sum", True, True, False),
    "melody+perf concat": ("melody+performance", "concat", True, True, False),
    "melody+perf tile": ("melody+performance", "tile", True, True, False),
}
SMALL = 0.05
"""A NLL difference (nats/token) under which one seed cannot decide a claim."""


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
    """Training seeds per model (claims with a difference under 0.05 nats need >= 2)."""
    augment: bool = True
    """Transpose -3..+3 and stretch 0.95-1.05 each training crop."""
    samples: int = 4
    """Held-out crops conditioned on for generation (OA and style-direction claims)."""
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
        "smoke": TransformerAePreset(pieces=6, seconds=1.5, max_tokens=32, per_piece=2, eval_per_piece=2, dim=16,
                                     heads=2, layers=1, ff=32, steps=4, batch_size=4, samples=1, augment=False),
        "quick": TransformerAePreset(),
        "full": TransformerAePreset(pieces=0, seconds=40.0, max_tokens=1024, per_piece=16, eval_per_piece=8,
                                    dim=384, heads=8, layers=6, encoder_layers=6, ff=1024, dropout=0.1,
                                    steps=20_000, batch_size=16, lr=5e-4, seeds=2, samples=16, device="auto",
                                    precision="bf16-mixed"),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim("style_lowers_nll", "Conditioning on the pooled performance style lowers held-out NLL.",
                  "performance-conditioned NLL below unconditional (Choi et al. Table 1)",
                  f"mean NLL (nats/token) of 'performance' < 'unconditional'; a gap < {SMALL} with 1 seed is inconclusive"),
            Claim("melody_plus_performance", "Melody + performance conditioning beats melody-only (sum, concat, tile compared).",
                  "melody & performance NLL below melody-only for every combination (Choi et al. Table 2)",
                  f"every one of sum/concat/tile has mean NLL < 'melody'; a gap < {SMALL} with 1 seed is inconclusive"),
            Claim("unpooled_copies", "Without mean pooling the autoencoder copies its input.",
                  "motivates pooling (Choi et al. Sec. 3.2)",
                  "unpooled NLL <= 0.5 x pooled 'performance' NLL"),
            Claim("relative_beats_absolute", "Relative attention beats absolute positions at equal steps.",
                  "relative attention lowers validation NLL against absolute positions (Huang et al. 2018, Music Transformer, arXiv:1809.04281, Sec. 5)",
                  f"mean NLL of 'unconditional' (relative) < 'absolute'; a gap < {SMALL} with 1 seed is inconclusive"),
            Claim("oa_conditioned", "Generations conditioned on a performance are more similar (OA) to it than unconditioned ones.",
                  "conditioned models score higher OA similarity than unconditioned (Choi et al. Table 3)",
                  "mean OA(generated | X, X) of 'performance' > of 'unconditional', over held-out crops X; "
                  "the ceiling is X re-played in the same style with fresh timing/velocity noise"),
            Claim("style_direction", "A loud/fast conditioning style gives louder, denser generations than a soft/slow one.",
                  "style controls generation (Choi et al. Sec. 5.3)",
                  "mean velocity of 'performance' generations loud/fast > soft/slow + 5, and note density (notes/s) higher"),
        ]

    def run(self, preset: TransformerAePreset, seed: int, out_dir: Path, resume: bool = False,
            fabric: "Fabric | None" = None) -> Result:
        """Train every model (on ``fabric``'s devices and ranks when given), then decide the claims on rank 0."""
        out_dir = Path(out_dir)
        started = time.perf_counter()
        claims = {c.id: c for c in self.claims()}
        device = resolve_device(preset.device) if fabric is None else fabric.device
        scores, _ = load_scores("bach", limit=preset.pieces or None, show_progress=False)
        pieces = [play(s, seed, split_of(s.name)) for s in scores]
        train = [p for p in pieces if p.split == "train"]
        held = [(s, p) for s, p in zip(scores, pieces) if p.split != "train"]
        if not train or not held:
            raise BadInputError(f"{preset.pieces} pieces give {len(train)} training and {len(held)} held-out pieces; "
                                "raise the preset's 'pieces'")
        train_data = make_crops(train, seconds=preset.seconds, max_tokens=preset.max_tokens, per_piece=preset.per_piece,
                                seed=seed, augment=preset.augment)
        eval_data = make_crops([p for _, p in held], seconds=preset.seconds, max_tokens=preset.max_tokens,
                               per_piece=preset.eval_per_piece, seed=seed + 1)
        cfg = TransformerConfig(vocab_size=PerformanceEncoding().vocab_size, dim=preset.dim, heads=preset.heads,
                                layers=preset.layers, ff=preset.ff, max_len=preset.max_tokens, dropout=preset.dropout)
        nlls: dict[str, list[float]] = {name: [] for name in MODELS}
        curves: dict[str, list[float]] = {}
        models: dict[str, TransformerAutoencoder] = {}
        for s in range(preset.seeds):
            for name, (cond, combine, pool, relative, absolute) in MODELS.items():
                torch.manual_seed(zlib.crc32(f"{seed}/{s}/{name}".encode()))
                mcfg = TransformerConfig(**{**asdict(cfg), "relative": relative, "absolute": absolute})
                model = TransformerAutoencoder(mcfg, cond, combine, pool, encoder_layers=preset.encoder_layers).to(device)
                tag = name.replace("+", "_").replace(" ", "_")
                losses = fit(model, _to(train_data, device), steps=preset.steps, batch_size=preset.batch_size,
                             lr=preset.lr, seed=seed * 1000 + s, checkpoint=out_dir / "checkpoints" / f"{tag}_s{s}.pt",
                             resume=resume, desc=f"{name} seed {s}", fabric=fabric)
                nlls[name].append(nll(model, _to(eval_data, device)))
                if s == 0:
                    curves[name], models[name] = losses, model
        mean = {name: float(np.mean(v)) for name, v in nlls.items()}
        metrics: dict = {"nll_nats_per_token": mean, "nll_per_seed": nlls, "train_crops": len(train_data),
                         "eval_crops": len(eval_data), "train_pieces": len(train), "held_out_pieces": len(held),
                         "final_train_loss": {n: float(np.mean(c[-10:])) for n, c in curves.items() if c}}
        if not is_rank_zero(fabric):  # the other ranks trained along; rank 0 samples, decides and writes
            return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics)
        enough = preset.steps >= 100
        self._nll_claims(claims, mean, preset.seeds, enough)
        artifacts = self._generation_claims(claims, metrics, models, held, preset, seed, out_dir, device, enough)
        artifacts.append(_plot_curves(curves, out_dir / "training_loss.png"))
        metrics["run_seconds_before_report"] = round(time.perf_counter() - started, 1)
        for name in [a for a in artifacts if a.endswith(".mid")]:
            write_midi_previews(out_dir / name)  # the report embeds these, and imports no domain package
        return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=artifacts)

    @staticmethod
    def _nll_claims(claims: dict[str, Claim], m: dict[str, float], seeds: int, enough: bool) -> None:
        def gap_ok(gap: float) -> bool:
            return enough and (seeds >= 2 or abs(gap) >= SMALL)

        gap = m["unconditional"] - m["performance"]
        claims["style_lowers_nll"].decide(
            f"performance {m['performance']:.3f} vs unconditional {m['unconditional']:.3f} nats/token (gap {gap:+.3f})",
            gap > 0, conclusive=gap_ok(gap))
        combos = {c: m[f"melody+perf {c}"] for c in ("sum", "concat", "tile")}
        gaps = {c: m["melody"] - v for c, v in combos.items()}
        claims["melody_plus_performance"].decide(
            "melody-only {:.3f}; ".format(m["melody"]) + ", ".join(f"{c} {v:.3f}" for c, v in combos.items())
            + " nats/token", all(g > 0 for g in gaps.values()), conclusive=all(gap_ok(g) for g in gaps.values()),
            note="best combination: " + min(combos, key=combos.__getitem__))
        ratio = m["unpooled"] / m["performance"]
        claims["unpooled_copies"].decide(
            f"unpooled {m['unpooled']:.3f} vs pooled {m['performance']:.3f} nats/token (ratio {ratio:.2f})",
            ratio <= 0.5, conclusive=enough)
        gap = m["absolute"] - m["unconditional"]
        claims["relative_beats_absolute"].decide(
            f"relative {m['unconditional']:.3f} vs absolute {m['absolute']:.3f} nats/token (gap {gap:+.3f})",
            gap > 0, conclusive=gap_ok(gap))

    @staticmethod
    def _generation_claims(claims, metrics, models, held, preset, seed, out_dir, device, enough) -> list[str]:
        enc = PerformanceEncoding()
        rng = np.random.default_rng(seed + 7)
        window = dict(window=min(1.0, preset.seconds / 2), hop=min(0.5, preset.seconds / 4))
        artifacts: list[str] = []
        samples = out_dir / "samples"
        oa: dict[str, list[float]] = {"performance": [], "unconditional": [], "ceiling": []}
        kw = dict(max_length=preset.max_tokens, temperature=preset.temperature, top_p=preset.top_p, show_progress=False)
        for i in range(preset.samples):
            score, piece = held[i % len(held)]
            start = float(rng.uniform(0.0, max(piece.performance.duration - preset.seconds, 0.0)))
            x = crop(piece.performance, start, preset.seconds)
            again, _ = render(score.voice, score.pitch, score.onset, score.duration, score.length, piece.style,
                              np.random.default_rng([seed, 99, i]))
            ids = torch.from_numpy(enc.encode(x)[: preset.max_tokens - 1])[None].to(device)
            outs = {name: enc.decode(generate(models[name], 1, performance=ids if name == "performance" else None,
                                              seed=seed * 100 + i, **kw)[0, 1:].cpu())
                    for name in ("performance", "unconditional")}
            for name, perf in outs.items():
                oa[name].append(oa_similarity(perf, x, **window) if len(perf) else 0.0)
                perf.to_midi(samples / f"{name}_{i}.mid")
                artifacts.append(f"samples/{name}_{i}.mid")
            oa["ceiling"].append(oa_similarity(crop(again, start, preset.seconds), x, **window))
            x.to_midi(samples / f"conditioning_{i}.mid")
            artifacts.append(f"samples/conditioning_{i}.mid")
            if i == 0:
                for name, perf in {"conditioning": x, **outs}.items():
                    plot_piano_roll(perf, samples / f"{name}_{i}.png", title=f"{name} (held-out {score.name})")
                    artifacts.append(f"samples/{name}_{i}.png")
        m = {k: float(np.mean(v)) for k, v in oa.items()}
        metrics["oa"] = m
        claims["oa_conditioned"].decide(
            f"OA conditioned {m['performance']:.3f} vs unconditioned {m['unconditional']:.3f}; "
            f"ceiling {m['ceiling']:.3f} (over {preset.samples} held-out crops)",
            m["performance"] > m["unconditional"], conclusive=enough and preset.samples >= 4,
            note=f"OA over {window['window']:g} s windows (hop {window['hop']:g} s) of {preset.seconds:g} s crops")
        styles = {"loud_fast": (110.0, 95.0), "soft_slow": (56.0, 50.0)}
        stats: dict[str, dict[str, list[float]]] = {k: {"velocity": [], "density": []} for k in styles}
        for i in range(preset.samples):
            score, _ = held[i % len(held)]
            for label, (tempo, level) in styles.items():
                style = Style(tempo, level, (0.0,) * score.voices, 0.0, 0.85, 0.01, 2.0)
                perf, _ = render(score.voice, score.pitch, score.onset, score.duration, score.length, style,
                                 np.random.default_rng([seed, i]))
                ids = torch.from_numpy(enc.encode(crop(perf, 0.0, preset.seconds))[: preset.max_tokens - 1])[None]
                out = enc.decode(generate(models["performance"], 1, performance=ids.to(device), seed=seed * 100 + i,
                                          **kw)[0, 1:].cpu())
                if len(out):
                    stats[label]["velocity"].append(float(out.velocity.mean()))
                    stats[label]["density"].append(len(out) / max(float(out.end.max()), 1e-3))
                if i == 0:
                    out.to_midi(samples / f"style_{label}.mid")
                    plot_piano_roll(out, samples / f"style_{label}.png", title=f"generated from a {label} style")
                    artifacts += [f"samples/style_{label}.mid", f"samples/style_{label}.png"]
        v = {k: float(np.mean(s["velocity"])) if s["velocity"] else float("nan") for k, s in stats.items()}
        d = {k: float(np.mean(s["density"])) if s["density"] else float("nan") for k, s in stats.items()}
        metrics["style_direction"] = {"velocity": v, "notes_per_second": d}
        claims["style_direction"].decide(
            f"velocity loud/fast {v['loud_fast']:.1f} vs soft/slow {v['soft_slow']:.1f}; "
            f"notes/s {d['loud_fast']:.2f} vs {d['soft_slow']:.2f}",
            v["loud_fast"] > v["soft_slow"] + 5 and d["loud_fast"] > d["soft_slow"],
            conclusive=enough and preset.samples >= 4)
        return artifacts


def _to(data, device: str | torch.device):
    return type(data)(data.performance.to(device), data.melody.to(device))


def _plot_curves(curves: dict[str, list[float]], path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, c in curves.items():
        ax.plot(c, label=name, lw=1)
    ax.set(xlabel="step", ylabel="training NLL (nats/token)", title="transformer_ae: training loss, seed 0")
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path.name
