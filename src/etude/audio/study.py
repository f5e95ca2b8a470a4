"""Study `amae`: Dieleman, van den Oord, Simonyan, "The challenge of realistic music generation:
modelling raw audio at scale", NeurIPS 2018 (arXiv:1806.10474).

Wiring only: rendered Bach (`etude.audio.render`), a stack of ADA levels with a prior
(`etude.audio.hierarchy`, trained level by level by `etude.audio.training.fit_hierarchy`), one-level
comparisons (unconditional WaveNet, VQ-VAE plain and with its remedies, AMAE without diversity), and
`etude.audio.listening` (reconstructions and samples judged by `etude.audio.metrics`). Every figure
is measured on held-out pieces.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from etude.audio import experiments
from etude.audio.hierarchy import save_hierarchy
from etude.audio.listening import listen
from etude.audio.plots import plot_curves
from etude.audio.render import SAMPLE_RATE
from etude.runtime import is_rank_zero
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["AmaePreset", "AmaeStudy"]


@dataclass(frozen=True)
class AmaePreset:
    """Sizes of the AMAE study: a stack of ADA levels (hops), its prior, and the one-level comparisons."""

    pieces: int = 12
    """Bach chorales rendered (every 4th piece held out)."""
    max_seconds: float = 0.0
    """Keep at most this many seconds per piece (0: whole pieces)."""
    steps: int = 200
    """Adam steps of the level-0 autoencoder and of the unconditional WaveNet baseline."""
    ablation_steps: int = 0
    """Adam steps of the one-level comparisons (VQ, VQ + remedies, AMAE without diversity); 0: `steps`."""
    top_steps: int = 200
    """Adam steps of every level above 0 (trained on the codes of the level below)."""
    prior_steps: int = 200
    """Adam steps of the prior over the top codes."""
    batch: int = 4
    """Crops per step."""
    length: int = 512
    """Samples per level-0 crop (a multiple of hops[0])."""
    top_length: int = 256
    """Symbols (codes of the level below) per crop of the levels above 0."""
    lr: float = 3e-3
    """Adam learning rate (start)."""
    final_lr: float = 0.1
    """Learning-rate fraction at the end of every stage (linear decay)."""
    codes: int = 256
    """K, codes per bottleneck (every level)."""
    hops: tuple = (8, 8)
    """Hop of every level, bottom up (total hop = product)."""
    residual: int = 16
    """Level-0 decoder residual channels (skip = 2x)."""
    layers: int = 8
    """Level-0 decoder layers per stack (receptive field 2^layers per stack)."""
    stacks: int = 1
    """Level-0 decoder dilation cycles."""
    top_residual: int = 16
    """Residual channels of the decoders above level 0."""
    top_layers: int = 6
    """Layers of the decoders above level 0."""
    encoder_channels: int = 32
    """Encoder hidden channels."""
    scalar_input: bool = True
    """The level-0 decoder also reads each mu-law class as an amplitude."""
    diversity: float = 0.1
    """AMAE diversity-loss weight (mean form)."""
    ablate_diversity: bool = True
    """Also train AMAE without the diversity loss."""
    ema: float = 0.99
    """EMA decay of the 'VQ + EMA + k-means + restarts' model."""
    restart_threshold: float = 0.5
    """Restart codes whose EMA count of uses per batch falls below this."""
    prior_residual: int = 16
    """Prior residual channels."""
    prior_layers: int = 6
    """Prior layers (receptive field 2^layers codes)."""
    prior_length: int = 64
    """Top codes per prior training crop."""
    valid_crops: int = 96
    """Held-out crops of `length` samples for the NLL and code-use figures."""
    reconstruct_seconds: float = 1.0
    """Seconds of held-out audio encoded and decoded at every level."""
    generate_seconds: float = 1.0
    """Seconds of audio sampled from the hierarchy and from the unconditional WaveNet."""
    temperature: float = 1.0
    """Softmax temperature of every decoding and sampling (1: the model's distribution)."""
    min_steps: int = 150
    """Fewer steps than this make the likelihood and code-use claims inconclusive."""
    min_audio_steps: int = 500
    """Fewer level-0 steps than this make the audio-quality claims inconclusive (the decoder is too young)."""
    min_top_steps: int = 2000
    """A top-level reconstruction that misses while its codes carry information is inconclusive (the level is
    too young) under this many top-level steps, and fails at or above it."""
    checkpoint_every: int = 100
    """Steps between checkpoints."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'auto' (cuda when available), as Fabric's accelerator; checkpoints and figures are
    device-independent."""
    precision: str = "32-true"
    """Fabric precision of training ('bf16-mixed' in full); anything but '32-true' on the CPU trains through Fabric."""

    def total_hop_of(self) -> int:
        """Samples per top-level code: the product of the hops."""
        return math.prod(self.hops)


class AmaeStudy(Study):
    """A two-level stack of argmax autoencoders with a WaveNet prior on rendered Bach piano, heard and measured;
    VQ-VAE (plain and with its remedies) and an unconditional WaveNet beside it."""

    name = "amae"
    title = "The challenge of realistic music generation: modelling raw audio at scale (AMAE, VQ-VAE, ADA)"
    citation = "Dieleman, van den Oord, Simonyan. NeurIPS 2018. arXiv:1806.10474"
    threads = 1
    trains_with_fabric = True
    presets = {
        "smoke": AmaePreset(
            pieces=2,
            max_seconds=6.0,
            steps=6,
            top_steps=6,
            prior_steps=6,
            batch=2,
            length=256,
            top_length=32,
            codes=32,
            hops=(8, 8),
            residual=8,
            layers=4,
            top_residual=8,
            top_layers=3,
            encoder_channels=8,
            ablate_diversity=False,
            prior_residual=8,
            prior_layers=3,
            prior_length=4,
            valid_crops=4,
            reconstruct_seconds=0.05,
            generate_seconds=0.05,
            checkpoint_every=4,
        ),
        "quick": AmaePreset(),
        "long": AmaePreset(
            pieces=16,
            steps=800,
            ablation_steps=150,
            top_steps=3000,
            prior_steps=300,
            batch=8,
            length=1024,
            top_length=256,
            residual=32,
            layers=10,
            top_residual=32,
            top_layers=8,
            encoder_channels=64,
            prior_residual=32,
            prior_layers=8,
            prior_length=64,
            valid_crops=32,
            restart_threshold=2.0,
            checkpoint_every=100,
        ),
        "full": AmaePreset(
            pieces=120,
            steps=100_000,
            top_steps=100_000,
            prior_steps=100_000,
            batch=16,
            length=8192,
            top_length=2048,
            codes=2048,
            hops=(8, 8),
            residual=128,
            layers=10,
            stacks=3,
            top_residual=128,
            top_layers=10,
            encoder_channels=256,
            lr=2e-4,
            prior_residual=128,
            prior_layers=10,
            prior_length=2048,
            valid_crops=512,
            reconstruct_seconds=4.0,
            generate_seconds=10.0,
            checkpoint_every=2000,
            device="auto",
            precision="bf16-mixed",
        ),
    }

    def claims(self) -> list[Claim]:
        return [
            Claim(
                "codebook_usage",
                "Plain VQ-VAE collapses onto few codes while AMAE keeps most in use; "
                "VQ-VAE with EMA + k-means init + restarts recovers.",
                "Sec. 3.3 (AMAE is proposed because VQ-VAE codebooks collapse); Jukebox (arXiv:2005.00341) "
                "Sec. 3.1 for the remedies",
                "held-out codes in use at hop hops[0]: plain VQ <= 10% of K; AMAE+div >= 25% of K; "
                "VQ+EMA+k-means+restarts >= 25% of K (inconclusive under min_steps or with fewer than 2K held-out codes)",
            ),
            Claim(
                "information_bound",
                "Codes lower the decoder NLL, and by less than the bound log2(K)/hop.",
                "exact bound log2(K)/hop: a K-way code every hop samples carries at most that many bits per sample",
                "AMAE+div gain over the unconditional WaveNet > 0, and every model's gain <= log2(K)/hop "
                "(a larger gain is a leak)",
            ),
            Claim(
                "total_nll",
                "Counting the codes' cost, the stack's total NLL = NLL_0 + (NLL_1 + NLL_prior / hop_1) / hop_0 "
                "is no better than the unconditional WaveNet (ADAs trade likelihood for structure).",
                "Sec. 4: the paper evaluates by listening, not NLL; an ADA pays for its codes",
                "total NLL of the stack >= the unconditional WaveNet's held-out NLL (bits/sample)",
            ),
            Claim(
                "reconstruction",
                "Decoding the level-0 codes of held-out audio gives back piano with its notes.",
                "Sec. 3 (an ADA's decoder models local structure, its codes the rest); Sec. 4 samples",
                "on held-out audio: flatness <= 10x the 8-bit mu-law round trip's, log-mel distance <= 0.5x "
                "white noise's (same RMS), chroma agreement >= noise's + half the gap to the round trip's, local flatness "
                "(envelope removed) <= the round trip's + half the gap to noise's, RMS 0.1x-10x "
                "(inconclusive under min_audio_steps)",
            ),
            Claim(
                "reconstruction_top",
                "Decoding the top-level codes (total hop) down the stack still gives piano with "
                "its notes: the structure is carried by the codes.",
                "Sec. 3-4 (two- and three-level stacks; higher levels keep less detail)",
                "the same criterion as `reconstruction`, on the top level (inconclusive under min_audio_steps)",
            ),
            Claim(
                "samples",
                "Ancestral sampling from the top prior down to audio gives piano-like sound.",
                "Sec. 4 (samples on the project page)",
                "the sample is finite, its flatness <= 10x the held-out mu-law round trip's, its time-averaged log-mel "
                "spectrum within 0.5x white noise's distance to held-out audio, local flatness as for `reconstruction`, RMS 0.1x-10x "
                "(inconclusive under min_audio_steps)",
            ),
        ]

    def run(
        self, preset: AmaePreset, seed: int, out_dir: Path, resume: bool = False, fabric: Fabric | None = None
    ) -> Result:
        """Train every model (on ``fabric``'s devices and ranks when given); rank 0 alone measures, listens and writes."""
        out_dir, p = Path(out_dir), preset
        ckpt, claims = out_dir / "checkpoints", {c.id: c for c in self.claims()}
        data = experiments.load_data(p, seed, fabric)
        stack, comparisons = experiments.configs(p)
        hier, curves = experiments.train_stack(p, seed, stack, data, ckpt, resume, fabric)
        levels, more = experiments.train_comparisons(p, seed, comparisons, data, ckpt, resume, fabric)
        baseline, top = experiments.train_top_baseline(p, seed, hier, data, ckpt, resume, fabric)
        curves.update({**more, **top})
        if not is_rank_zero(fabric):  # the other ranks trained along; rank 0 measures, decides and writes
            return Result(self.name, "", seed, claims=list(claims.values()))
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics = experiments.measure(p, hier, levels, baseline, data)
        heard, artifacts = listen(
            hier,
            levels["wavenet"].decoder,
            data.reference,
            out_dir,
            samples=max(1, int(p.generate_seconds * SAMPLE_RATE)),
            temperature=p.temperature,
            seed=seed,
        )
        artifacts.append(plot_curves(curves, out_dir / "training_curves.png").name)
        save_hierarchy(out_dir / "hierarchy.pt", hier)
        experiments.judge(claims, p, metrics, heard)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        artifacts.append("hierarchy.pt")
        return Result(self.name, "", seed, claims=list(claims.values()), metrics=metrics, artifacts=artifacts)
