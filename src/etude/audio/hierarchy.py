"""Autoregressive discrete autoencoders (ADA) stacked in levels, with a WaveNet prior on top.

Dieleman, van den Oord, Simonyan, "The challenge of realistic music generation: modelling raw audio
at scale", NeurIPS 2018 (arXiv:1806.10474), Sec. 3: a feed-forward encoder maps a sequence to
discrete codes at 1/hop of its rate; a WaveNet decoder models p(x | codes); the next level models
those codes the same way; a WaveNet prior models the top codes. Levels are trained in sequence.

Total NLL in bits per sample of one level with its prior: NLL_dec + NLL_prior / hop.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from etude.audio.bottlenecks import ArgmaxQuantizer, Quantized, VectorQuantizer
from etude.audio.mulaw import mulaw_decode
from etude.audio.wavenet import WaveNet
from etude.errors import BadInputError, CheckpointError
from etude.runtime import load_checkpoint, save_checkpoint
from etude.validation import check_int

__all__ = [
    "LevelConfig",
    "HierarchyConfig",
    "Encoder",
    "AutoEncoder",
    "Hierarchy",
    "BOTTLENECKS",
    "save_hierarchy",
    "load_hierarchy",
]

BOTTLENECKS = ("none", "vq", "amae")
"""'none' makes an unconditional WaveNet (the baseline), 'vq' a VQ-VAE, 'amae' an argmax autoencoder."""


@dataclass(frozen=True)
class LevelConfig:
    """One level: encoder, bottleneck and WaveNet decoder over an alphabet of `classes` symbols."""

    classes: int = 256
    """Alphabet of the modelled sequence (256 mu-law classes at the bottom; K of the level below above it)."""
    hop: int = 16
    """Symbols per code."""
    codes: int = 256
    """K, the number of discrete codes."""
    bottleneck: str = "amae"
    """One of BOTTLENECKS."""
    residual: int = 32
    """Decoder residual channels."""
    skip: int = 64
    """Decoder skip channels."""
    layers: int = 8
    """Decoder layers per stack (dilations 1..2^(layers-1))."""
    stacks: int = 1
    """Decoder dilation cycles."""
    encoder_channels: int = 64
    """Encoder hidden channels."""
    code_dim: int = 32
    """VQ code vector size (AMAE uses K)."""
    diversity: float = 0.1
    """AMAE diversity-loss weight (mean form)."""
    beta: float = 0.25
    """VQ commitment weight."""
    ema: float = 0.0
    """VQ codebook EMA decay (0: learn the codebook by gradient)."""
    kmeans_init: bool = False
    """VQ: k-means initialization on the first batch."""
    restart_threshold: float = 0.0
    """VQ: restart codes whose EMA usage per batch falls below this (0: never)."""
    scalar_input: bool = False
    """Decoder also reads each symbol as an ordered amplitude (for mu-law audio, not for codes)."""

    def __post_init__(self) -> None:
        if self.bottleneck not in BOTTLENECKS:
            raise BadInputError(f"bottleneck must be one of {BOTTLENECKS}, got {self.bottleneck!r}")
        for name in ("classes", "hop", "codes", "residual", "skip", "layers", "stacks", "encoder_channels", "code_dim"):
            value = getattr(self, name)
            check_int(name, value, 1)


@dataclass(frozen=True)
class HierarchyConfig:
    """Levels from the bottom (audio) up, and the prior over the top level's codes."""

    levels: tuple[LevelConfig, ...] = (LevelConfig(),)
    prior_residual: int = 32
    prior_layers: int = 6
    prior_stacks: int = 1

    @staticmethod
    def from_dict(data: dict) -> HierarchyConfig:
        levels = tuple(LevelConfig(**level) for level in data["levels"])
        return HierarchyConfig(levels, **{k: v for k, v in data.items() if k != "levels"})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Encoder(nn.Module):
    """Feed-forward, non-causal: symbols [B, T] -> features [B, D, T / hop]."""

    def __init__(self, classes: int, channels: int, out: int, hop: int) -> None:
        super().__init__()
        self.hop = hop
        self.embed = nn.Embedding(classes, channels)
        self.net = nn.Sequential(
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, hop, stride=hop),
            nn.ReLU(),  # downsample by hop
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, out, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] % self.hop:
            raise BadInputError(
                f"encoder input expected [batch, time] with time a multiple of hop={self.hop}, found {list(x.shape)}"
            )
        return self.net(self.embed(x).transpose(1, 2))


class AutoEncoder(nn.Module):
    """One ADA level: codes = bottleneck(encoder(x)); p(x | codes) by a conditional WaveNet."""

    def __init__(self, config: LevelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder: Encoder | None = None
        self.quantizer: VectorQuantizer | ArgmaxQuantizer | None = None
        cond = 0
        if c.bottleneck == "vq":
            self.encoder = Encoder(c.classes, c.encoder_channels, c.code_dim, c.hop)
            self.quantizer = VectorQuantizer(
                c.codes,
                c.code_dim,
                beta=c.beta,
                ema=c.ema or None,
                kmeans_init=c.kmeans_init,
                restart_threshold=c.restart_threshold or None,
            )
            cond = c.code_dim
        elif c.bottleneck == "amae":
            self.encoder = Encoder(c.classes, c.encoder_channels, c.codes, c.hop)
            self.quantizer = ArgmaxQuantizer(c.codes, diversity=c.diversity)
            cond = c.codes
        self.decoder = WaveNet(
            c.classes,
            c.residual,
            c.skip,
            c.layers,
            c.stacks,
            cond_channels=cond,
            hop=c.hop,
            scalar_input=c.scalar_input,
        )

    @property
    def conditional(self) -> bool:
        return self.quantizer is not None

    def encode(self, x: torch.Tensor) -> Quantized:
        """Codes of x [B, T] (T a multiple of hop)."""
        if self.quantizer is None or self.encoder is None:
            raise BadInputError("an unconditional level has no encoder; use bottleneck 'vq' or 'amae'")
        return self.quantizer(self.encoder(x))

    def losses(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Quantized | None]:
        """(training loss, decoder NLL in bits per symbol, codes) for x [B, T]."""
        q = self.encode(x) if self.conditional else None
        nll = self.decoder.nll_bits(x, None if q is None else q.codes)
        aux = q.loss if q is not None else nll.new_zeros(())
        return nll * torch.log(torch.tensor(2.0)) + aux, nll, q

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The training loss of x [B, T]: the first of ``losses(x)``."""
        return self.losses(x)[0]

    def decode(
        self,
        indices: torch.Tensor | None,
        length: int,
        *,
        generator: torch.Generator | None = None,
        batch: int = 1,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Sample [B, length] symbols given code indices [B, >= length / hop] (None for an unconditional level)."""
        cond = None
        if self.quantizer is not None:  # conditional
            if indices is None:
                raise BadInputError("a conditional level needs code indices to decode")
            cond = self.quantizer.lookup(indices).to(self.decoder.embed.weight.dtype)
            batch = indices.shape[0]
        return self.decoder.generate(length, cond, batch=batch, generator=generator, temperature=temperature)


class Hierarchy(nn.Module):
    """Levels of ADAs from audio up, and a WaveNet prior over the top codes; ancestral sampling down."""

    def __init__(self, config: HierarchyConfig) -> None:
        super().__init__()
        if not config.levels:
            raise BadInputError("a hierarchy needs at least one level")
        for below, above in zip(config.levels, config.levels[1:]):
            if above.classes != below.codes:
                raise BadInputError(
                    f"a level's classes must equal the codes of the level below: {above.classes} != {below.codes}"
                )
        if any(level.bottleneck == "none" for level in config.levels):
            raise BadInputError("every level of a hierarchy needs a bottleneck ('vq' or 'amae')")
        self.config = config
        self.levels = nn.ModuleList(AutoEncoder(level) for level in config.levels)
        top = config.levels[-1]
        self.prior = WaveNet(
            top.codes, config.prior_residual, 2 * config.prior_residual, config.prior_layers, config.prior_stacks
        )

    @property
    def total_hop(self) -> int:
        hop = 1
        for level in self.config.levels:
            hop *= level.hop
        return hop

    @property
    def autoencoders(self) -> list[AutoEncoder]:
        """The levels, bottom first, as ``AutoEncoder`` (iterating the ModuleList yields ``nn.Module``)."""
        return cast("list[AutoEncoder]", list(self.levels))

    @torch.no_grad()
    def encode_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Code indices of every level for audio classes x [B, T] (T a multiple of total_hop)."""
        codes, current = [], x
        for level in self.autoencoders:
            current = level.encode(current).indices
            codes.append(current)
        return codes

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, level: int, *, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        """Encode audio classes x [B, T] up to `level`, then decode down from those codes: classes [B, T].

        Level 0 decodes x from its own codes; level 1 first samples level-0 codes from level-1 codes, etc.
        """
        if not 0 <= level < len(self.levels):
            raise BadInputError(f"level must be in [0, {len(self.levels)}), got {level!r}")
        self.eval()
        codes = self.encode_all(x)[level]
        lengths = [x.shape[1]]
        for cfg in self.config.levels[:level]:
            lengths.append(lengths[-1] // cfg.hop)
        for i in reversed(range(level + 1)):
            codes = self.autoencoders[i].decode(codes, lengths[i], generator=generator, temperature=temperature)
        return codes

    @torch.no_grad()
    def sample(
        self, samples: int, *, generator: torch.Generator | None = None, temperature: float = 1.0, batch: int = 1
    ) -> torch.Tensor:
        """Ancestral sampling: top codes from the prior (the first code too, from p(x_0)), then each decoder
        down to audio in [-1, 1]; [samples] (or [batch, samples] when batch > 1)."""
        check_int("samples", samples, 1)
        self.eval()
        lengths = [samples]
        for level in self.config.levels:
            lengths.append(-(-lengths[-1] // level.hop))
        codes = self.prior.generate(lengths[-1], generator=generator, temperature=temperature, batch=batch)
        for i in reversed(range(len(self.levels))):
            codes = self.autoencoders[i].decode(codes, lengths[i], generator=generator, temperature=temperature)
        audio = mulaw_decode(codes.cpu(), self.config.levels[0].classes)
        return audio[0] if batch == 1 else audio


_KIND = "etude-audio-hierarchy"


def save_hierarchy(path: str | os.PathLike[str], model: Hierarchy) -> None:
    """Write the hierarchy's config and weights atomically (read back with `load_hierarchy`)."""
    save_checkpoint(path, {"kind": _KIND, "config": model.config.to_dict(), "model": model.state_dict()})


def load_hierarchy(path: str | os.PathLike[str]) -> Hierarchy:
    """A hierarchy saved by `save_hierarchy`, in eval mode; another file raises CheckpointError."""
    state = load_checkpoint(path, expect={"kind": _KIND})
    try:
        model = Hierarchy(HierarchyConfig.from_dict(state["config"]))
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError, BadInputError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a valid audio hierarchy: {str(exc).splitlines()[0]}"
        ) from exc
    return model.eval()
