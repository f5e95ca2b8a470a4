"""The sizes of the `amae` study (`etude.audio.study` holds its presets): one dataclass that the study
and its experiments (`etude.audio.experiments`) both read, so neither imports the other for it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from etude.studies.fields import rule_metadata

__all__ = ["AmaePreset"]


@dataclass(frozen=True)
class AmaePreset:
    """Sizes of the AMAE study: a stack of ADA levels (hops), its prior, and the one-level comparisons."""

    pieces: int = 12
    """Bach chorales rendered, or recordings read (the first by path), every 4th piece held out."""
    dataset: str = "chorales"
    """'chorales' (Bach chorales rendered with a General MIDI soundfont) or 'piano' (a folder of piano
    recordings, `etude data`'s ``piano``: WAV files at any rate, resampled to 16 kHz)."""
    data_dir: str = ""
    """Where the recordings are looked for first (``--data-dir``: ``DIR/piano`` or ``DIR``)."""
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
    final_lr: float = field(default=0.1, metadata=rule_metadata(low=0, meaning="a learning-rate fraction"))
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
    diversity: float = field(default=0.1, metadata=rule_metadata(low=0, meaning="a loss weight (0: none)"))
    """AMAE diversity-loss weight (mean form)."""
    ablate_diversity: bool = True
    """Also train AMAE without the diversity loss."""
    ema: float = 0.99
    """EMA decay of the 'VQ + EMA + k-means + restarts' model."""
    restart_threshold: float = field(default=0.5, metadata=rule_metadata(low=0, meaning="a usage count (0: never)"))
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
