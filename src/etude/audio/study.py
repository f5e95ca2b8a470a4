"""Study `amae`: Dieleman, van den Oord, Simonyan, "The challenge of realistic music generation:
modelling raw audio at scale", NeurIPS 2018 (arXiv:1806.10474).

Wiring only: rendered Bach (`etude.audio.render`), ADA levels and priors (`etude.audio.hierarchy`),
the loops of `etude.audio.training`, and the claims (codebook use, information bound, total NLL,
samples). Every figure is measured on held-out pieces.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from etude.audio.bottlenecks import code_entropy
from etude.audio.hierarchy import AutoEncoder, Hierarchy, HierarchyConfig, LevelConfig, save_hierarchy
from etude.audio.plots import plot_curves, plot_spectrogram, spectral_flatness
from etude.audio.render import SAMPLE_RATE, piano_dataset, write_wav
from etude.audio.training import encode_pieces, evaluate_level, evaluate_prior, fixed_crops, to_classes, train_model
from etude.runtime import resolve_device
from etude.studies.protocol import Claim, Result, Study

__all__ = ["AmaePreset", "AmaeStudy"]


@dataclass(frozen=True)
class AmaePreset:
    """Sizes of the AMAE study (the pilot in papers.md: hop 16, K 256, 8-layer decoder, 200 steps)."""

    pieces: int = 12
    """Bach chorales rendered (every 4th piece held out)."""
    max_seconds: float = 0.0
    """Keep at most this many seconds per piece (0: whole pieces)."""
    steps: int = 200
    """Adam steps per autoencoder / baseline."""
    prior_steps: int = 200
    """Adam steps per code prior."""
    batch: int = 4
    """Crops per step."""
    length: int = 512
    """Samples per crop (a multiple of every hop)."""
    lr: float = 3e-3
    """Adam learning rate."""
    codes: int = 256
    """K, codes per bottleneck."""
    hops: tuple = (16, 8)
    """Hops of the AMAE levels; the first is the main one (claims 1, 2, 4), all feed claim 3."""
    residual: int = 16
    """Decoder residual channels (skip = 2x)."""
    layers: int = 8
    """Decoder layers per stack (receptive field 2^layers per stack)."""
    stacks: int = 1
    """Decoder dilation cycles."""
    encoder_channels: int = 32
    """Encoder hidden channels."""
    diversity: float = 0.1
    """AMAE diversity-loss weight (mean form)."""
    ablate_diversity: bool = True
    """Also train AMAE without the diversity loss."""
    ema: float = 0.99
    """EMA decay of the 'VQ + EMA + restarts' model."""
    restart_threshold: float = 0.03
    """Restart codes whose EMA count per batch falls below this."""
    prior_residual: int = 16
    """Prior residual channels."""
    prior_layers: int = 6
    """Prior layers (receptive field 2^layers codes)."""
    prior_length: int = 128
    """Codes per prior training crop."""
    valid_crops: int = 96
    """Held-out crops of `length` samples for every figure."""
    generate_seconds: float = 1.0
    """Seconds of audio sampled from the hierarchy."""
    min_steps: int = 150
    """Fewer steps than this make claims 1-4 inconclusive."""
    checkpoint_every: int = 100
    """Steps between checkpoints."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'auto' (cuda when available); checkpoints and figures are device-independent."""


class AmaeStudy(Study):
    """Argmax autoencoders vs VQ-VAE in a WaveNet hierarchy on rendered Bach piano."""

    name = "amae"
    title = "The challenge of realistic music generation: modelling raw audio at scale (AMAE, VQ-VAE, ADA)"
    citation = "Dieleman, van den Oord, Simonyan. NeurIPS 2018. arXiv:1806.10474"
    threads = 1
    presets = {
        "smoke": AmaePreset(pieces=2, max_seconds=6.0, steps=6, prior_steps=6, batch=2, length=256, codes=32,
                            hops=(16, 8), residual=8, layers=4, encoder_channels=8, ablate_diversity=False,
                            prior_residual=8, prior_layers=3, prior_length=16, valid_crops=4, generate_seconds=0.05,
                            checkpoint_every=4),
        "quick": AmaePreset(),
        "full": AmaePreset(pieces=120, steps=100_000, prior_steps=100_000, batch=16, length=8192, codes=2048,
                           hops=(64, 16, 8), residual=128, layers=10, stacks=3, encoder_channels=256, lr=2e-4,
                           prior_residual=128, prior_layers=10, prior_length=2048, valid_crops=512,
                           generate_seconds=10.0, checkpoint_every=2000, device="auto"),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim("codebook_usage", "Plain VQ-VAE collapses onto few codes while AMAE keeps most in use; "
                  "VQ-VAE with EMA + restarts recovers.",
                  "Sec. 3.3 (AMAE avoids collapse); pilot hop 16, K 256, 200 steps: VQ 2 codes, AMAE+div 104 "
                  "(4.5 bits), AMAE no div 7 (papers.md s.1)",
                  "held-out codes in use: plain VQ <= 10% of K; AMAE+div >= 25% of K; VQ+EMA+restarts >= 25% of K "
                  "(inconclusive under min_steps or with fewer than 2K held-out codes)"),
            Claim("information_bound", "Codes lower the decoder NLL, and by less than the bound log2(K)/hop.",
                  "exact bound log2(K)/hop (0.5 bits at K 256, hop 16); pilot gain 0.105 at 1,500 steps (papers.md s.1)",
                  "AMAE+div gain over the unconditional WaveNet > 0, and every model's gain <= log2(K)/hop "
                  "(a larger gain is a leak)"),
            Claim("total_nll", "Counting the codes' cost, total NLL = decoder NLL + prior NLL / hop is no better "
                  "than the unconditional WaveNet at every hop (ADAs trade likelihood for structure).",
                  "pilot: code cost (entropy / hop) exceeded the gain for every model (papers.md s.1); "
                  "the paper evaluates samples by listening, not NLL (Sec. 4)",
                  "for every hop: decoder NLL + prior NLL / hop >= unconditional NLL"),
            Claim("samples", "Ancestral sampling through prior and decoder gives piano-like audio (WAV + spectrogram).",
                  "Sec. 4 (samples on the project page)",
                  "the sample is finite, has the asked length, its RMS is within 0.1x-10x of held-out audio and "
                  "its mu-law symbol entropy within 1.5 bits of held-out audio's"),
        ]

    def run(self, preset: AmaePreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = out_dir / "checkpoints"
        claims = {c.id: c for c in self.claims()}
        p = preset
        device = resolve_device(p.device)
        data = piano_dataset(p.pieces, seed=seed, max_seconds=p.max_seconds or None)
        train, valid = to_classes(data["train"]), to_classes(data["valid"])
        crops = fixed_crops(valid, p.length, p.valid_crops)
        base = LevelConfig(hop=p.hops[0], codes=p.codes, residual=p.residual, skip=2 * p.residual, layers=p.layers,
                           stacks=p.stacks, encoder_channels=p.encoder_channels, diversity=p.diversity)
        models = {"wavenet": dataclasses.replace(base, bottleneck="none"),
                  "vq": dataclasses.replace(base, bottleneck="vq"),
                  "vq_ema_restart": dataclasses.replace(base, bottleneck="vq", ema=p.ema,
                                                        restart_threshold=p.restart_threshold)}
        for hop in p.hops:
            models[f"amae_h{hop}"] = dataclasses.replace(base, hop=hop)
        if p.ablate_diversity:
            models["amae_nodiv"] = dataclasses.replace(base, diversity=0.0)
        levels, metrics, curves = {}, {}, {}
        for i, (key, config) in enumerate(models.items()):
            torch.manual_seed(seed * 1000 + i)
            level = AutoEncoder(config).to(device)
            curves[key] = train_model(level, lambda x, m=level: m.losses(x)[0], train, steps=p.steps, batch=p.batch,
                                      length=p.length, lr=p.lr, seed=seed * 1000 + i, checkpoint=ckpt / f"{key}.pt",
                                      resume=resume, tag=_tag(key, config, p), checkpoint_every=p.checkpoint_every,
                                      desc=f"amae {key}")
            levels[key] = level
            metrics[key] = evaluate_level(level, crops)
        priors = {}
        for j, hop in enumerate(p.hops):
            key = f"amae_h{hop}"
            codes_train = encode_pieces(levels[key], train)
            codes_valid = encode_pieces(levels[key], valid)
            torch.manual_seed(seed * 1000 + 500 + j)
            hier = Hierarchy(HierarchyConfig((models[key],), prior_residual=p.prior_residual, prior_layers=p.prior_layers))
            hier.levels[0].load_state_dict(levels[key].state_dict())
            hier.to(device)
            prior = hier.prior
            curves[f"prior_h{hop}"] = train_model(prior, prior.nll_bits, codes_train, steps=p.prior_steps, batch=p.batch,
                                                  length=p.prior_length, lr=p.lr, seed=seed * 1000 + 500 + j,
                                                  checkpoint=ckpt / f"prior_h{hop}.pt", resume=resume,
                                                  tag=_tag(f"prior_h{hop}", models[key], p),
                                                  checkpoint_every=p.checkpoint_every, desc=f"amae prior h{hop}")
            metrics[key]["prior_bits_per_code"] = evaluate_prior(prior, fixed_crops(codes_valid, p.prior_length, p.valid_crops))
            priors[hop] = hier
        return self._decide(p, seed, out_dir, claims, metrics, curves, priors, data["valid"])

    def _decide(self, p: AmaePreset, seed: int, out_dir: Path, claims: dict, metrics: dict, curves: dict,
                priors: dict, valid_audio: list[np.ndarray]) -> Result:
        k, main = p.codes, p.hops[0]
        enough = p.steps >= p.min_steps and p.prior_steps >= p.min_steps
        uncond = metrics["wavenet"]["nll_bits"]
        held_codes = p.valid_crops * p.length // main
        use = {m: metrics[m]["usage"] for m in metrics if "usage" in metrics[m]}
        ent = {m: metrics[m]["entropy_bits"] for m in metrics if "entropy_bits" in metrics[m]}
        amae = f"amae_h{main}"
        claims["codebook_usage"].decide(
            "; ".join(f"{m} {use[m]}/{k} codes ({ent[m]:.2f} bits)" for m in use),
            use["vq"] <= 0.10 * k and use[amae] >= 0.25 * k and use["vq_ema_restart"] >= 0.25 * k,
            conclusive=enough and held_codes >= 2 * k, note=f"{held_codes} held-out codes at hop {main}")
        gains = {m: uncond - metrics[m]["nll_bits"] for m in metrics if m != "wavenet"}
        bounds = {m: math.log2(k) / (int(m.split("_h")[1]) if "_h" in m else main) for m in gains}
        leaks = [m for m in gains if gains[m] > bounds[m]]
        claims["information_bound"].decide(
            f"unconditional {uncond:.3f} bits/sample; gains: "
            + ", ".join(f"{m} {gains[m]:+.3f} (bound {bounds[m]:.3f})" for m in gains),
            gains[amae] > 0 and not leaks, conclusive=enough,
            note=("LEAK: gain above the bound for " + ", ".join(leaks)) if leaks else "")
        totals = {h: metrics[f"amae_h{h}"]["nll_bits"] + metrics[f"amae_h{h}"]["prior_bits_per_code"] / h for h in p.hops}
        claims["total_nll"].decide(
            "; ".join(f"hop {h}: {metrics[f'amae_h{h}']['nll_bits']:.3f} + {metrics[f'amae_h{h}']['prior_bits_per_code']:.2f}"
                      f"/{h} = {totals[h]:.3f}" for h in p.hops) + f" vs unconditional {uncond:.3f} bits/sample",
            all(t >= uncond for t in totals.values()), conclusive=enough and len(p.hops) >= 2)
        metrics["total_nll_bits"] = {str(h): t for h, t in totals.items()}
        # ----- samples from the hierarchy (main hop) -----
        generator = torch.Generator().manual_seed(seed)
        samples = max(1, int(p.generate_seconds * SAMPLE_RATE))
        audio = priors[main].sample(samples, generator=generator).numpy()
        reference = np.concatenate(valid_audio)[: max(samples, SAMPLE_RATE * 4)]
        def entropy(a: np.ndarray) -> float:
            return code_entropy(to_classes([a])[0], 256)

        rms, ref_rms = float(np.sqrt(np.mean(audio ** 2))), float(np.sqrt(np.mean(reference ** 2)))
        ok = bool(np.isfinite(audio).all()) and len(audio) == samples
        ratio = rms / max(ref_rms, 1e-9)
        claims["samples"].decide(
            f"{len(audio) / SAMPLE_RATE:.2f} s sampled; RMS {rms:.3f} vs held-out {ref_rms:.3f} (x{ratio:.2f}); "
            f"mu-law entropy {entropy(audio):.2f} vs {entropy(reference):.2f} bits",
            ok and 0.1 <= ratio <= 10 and abs(entropy(audio) - entropy(reference)) <= 1.5, conclusive=enough,
            note=f"The criterion checks level and symbol marginals only. Spectral flatness {spectral_flatness(audio):.3g} "
                 f"vs held-out {spectral_flatness(reference[:samples]):.2g} (white noise ~0.56, tones ~0): listen to "
                 "sample.wav and see spectrogram.png before calling it piano-like.")
        metrics["spectral_flatness"] = {"sample": spectral_flatness(audio), "held_out": spectral_flatness(reference[:samples])}
        wav = write_wav(out_dir / "sample.wav", audio)
        ref_wav = write_wav(out_dir / "heldout.wav", reference[:samples])
        spec = plot_spectrogram({"sampled from the hierarchy (prior -> AMAE decoder)": audio,
                                 "held-out rendered Bach": reference[:samples]}, out_dir / "spectrogram.png")
        curve_png = plot_curves(curves, out_dir / "training_curves.png")
        save_hierarchy(out_dir / "hierarchy.pt", priors[main])
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        metrics.update(gains=gains, receptive_field=priors[main].levels[0].decoder.receptive_field)
        return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics,
                      artifacts=[x.name for x in (wav, ref_wav, spec, curve_png)] + ["hierarchy.pt"])


def _tag(key: str, config: LevelConfig, preset: AmaePreset) -> str:
    """Checkpoint tag: the model's name and a hash of its config and the preset."""
    text = json.dumps([key, dataclasses.asdict(config), dataclasses.asdict(preset)], sort_keys=True, default=str)
    return f"{key}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
