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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etude.audio import experiments
from etude.audio.hierarchy import save_hierarchy
from etude.audio.listening import listen
from etude.audio.plots import plot_curves
from etude.audio.presets import AmaePreset
from etude.audio.render import SAMPLE_RATE, soundfont_identity
from etude.runtime import is_rank_zero
from etude.studies.protocol import Claim, Result, Study

if TYPE_CHECKING:
    from lightning_fabric import Fabric

__all__ = ["AmaePreset", "AmaeStudy"]


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
            dataset="piano",  # Dieleman et al. Sec. 4: recorded solo piano (their own data set)
        ),
    }

    def data_identity(self, preset: AmaePreset) -> dict[str, Any]:
        """The datasets read (`datasets`) and, for rendered chorales, the soundfont they are rendered with
        (path and SHA-256; None when none is installed): other audio, so a resume with either changed is refused."""
        identity = super().data_identity(preset)
        if preset.dataset == "chorales":  # rendered here; recorded piano WAVs need no soundfont
            identity["soundfont"] = soundfont_identity()
        return identity

    def datasets(self, preset: AmaePreset) -> tuple[str, ...]:
        from etude.data.use import check_dataset

        check_dataset("dataset", preset.dataset, ("chorales", "piano"))
        return ("piano",) if preset.dataset == "piano" else ()

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
