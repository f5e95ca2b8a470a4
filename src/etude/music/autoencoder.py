"""The Transformer autoencoder (Choi, Hawthorne, Simon, Dinculescu, Engel, ICML 2020, arXiv:1912.05537).

Sec. 3.2: a performance encoder (bidirectional relative attention) whose outputs are mean-pooled
over time into one style vector ``s = (1/T) sum_t enc(x)_t``; the decoder (a Music Transformer)
cross-attends to it. Sec. 3.3: a melody encoder's outputs ``m_t`` combine with ``s`` by

- ``sum``: ``m_t + s`` (broadcast over time), memory ``[B, Tm, D]``;
- ``concat``: ``[m_1 .. m_Tm; 0; s]`` along time, memory ``[B, Tm + 2, D]``: the melody, a zero
  separator ("stop token", never masked) and the style last, as in magenta's
  ``magenta/models/score2perf/transformer_autoencoder.py`` (``mel_perf_transformer_encode``,
  ``aggregation == "concat"``);
- ``tile``: ``[m_t, s]`` along channels, memory ``[B, Tm, 2D]``.

Baselines (``conditioning``): 'none' (unconditional Music Transformer), 'melody' (melody only),
'performance' (style vector only) and ``pool=False`` (the decoder sees every encoder output,
so the autoencoder can copy its input).

Both encoders embed like the decoder (``embed_tokens``: ``sqrt(D) E[x] + PE(t)`` with ``E`` drawn
from ``N(0, D^-1/2)``, as tensor2tensor does), so tokens and sinusoidal positions have one scale and
the memory's positions reach cross-attention, which has no relative term (the decoder's queries
carry their own sinusoids). ``LAYOUT`` numbers this architecture in checkpoints.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from etude.errors import BadInputError
from etude.music.transformer import (
    EncoderLayer,
    MusicTransformer,
    TransformerConfig,
    check_tokens,
    embed_tokens,
    token_embedding,
)

__all__ = ["COMBINES", "CONDITIONINGS", "LAYOUT", "PerformanceEncoder", "TransformerAutoencoder"]

COMBINES = ("sum", "concat", "tile")
CONDITIONINGS = ("none", "performance", "melody", "melody+performance")
LAYOUT = 3
"""Architecture version stored in checkpoints (1: encoders without absolute positions, concat ``[s; m]``;
2: embeddings drawn from N(0, 1), sinusoids off by default; 3: N(0, D^-1/2) and sinusoids on)."""


class PerformanceEncoder(nn.Module):
    """Embedding (positions as in the decoder) + bidirectional encoder layers: ``[B, T] -> [B, T, D]`` (also melodies)."""

    def __init__(self, cfg: TransformerConfig, vocab_size: int, layers: int) -> None:
        super().__init__()
        self.cfg, self.vocab_size = cfg, vocab_size
        self.embed = token_embedding(vocab_size, cfg.dim)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(layers))
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, tokens: Tensor, padding: Tensor | None = None) -> Tensor:
        check_tokens(tokens, self.vocab_size, self.cfg.max_len, "encoder tokens")
        x = embed_tokens(self.embed, tokens, self.cfg)
        for layer in self.layers:
            x = layer(x, padding)
        return self.norm(x)


class TransformerAutoencoder(nn.Module):
    """Style- and melody-conditioned Music Transformer.

    :param cfg: decoder sizes (the encoders share width, heads and ``max_len``).
    :param conditioning: one of ``CONDITIONINGS``.
    :param combine: one of ``COMBINES`` (used with 'melody+performance').
    :param pool: mean-pool the performance encoding (False: the copying baseline).
    :param melody_vocab: melody vocabulary (``MelodyEncoding().vocab_size`` = 93).
    :param encoder_layers: layers of each encoder.
    """

    def __init__(
        self,
        cfg: TransformerConfig = TransformerConfig(),
        conditioning: str = "performance",
        combine: str = "sum",
        pool: bool = True,
        melody_vocab: int = 93,
        encoder_layers: int | None = None,
    ) -> None:
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise BadInputError(f"conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
        if combine not in COMBINES:
            raise BadInputError(f"combine must be one of {COMBINES}, got {combine!r}")
        if not pool and conditioning == "melody+performance":
            raise BadInputError("pool=False is the copying baseline for conditioning='performance' only")
        self.cfg, self.conditioning, self.combine, self.pool = cfg, conditioning, combine, pool
        layers = cfg.layers if encoder_layers is None else encoder_layers
        self.uses_performance = "performance" in conditioning
        self.uses_melody = "melody" in conditioning
        if self.uses_performance:
            self.performance_encoder = PerformanceEncoder(cfg, cfg.vocab_size, layers)
        if self.uses_melody:
            self.melody_encoder = PerformanceEncoder(cfg, melody_vocab, layers)
        memory_dim = (
            None
            if conditioning == "none"
            else (2 * cfg.dim if conditioning == "melody+performance" and combine == "tile" else cfg.dim)
        )
        self.decoder = MusicTransformer(cfg, memory_dim)

    def style(self, performance: Tensor, padding: Tensor | None = None) -> Tensor:
        """The pooled style vector ``s = mean_t enc(x)_t`` over non-padding steps: ``[B, D]``."""
        if not self.uses_performance:
            raise BadInputError(f"a model with conditioning={self.conditioning!r} has no performance encoder")
        h = self.performance_encoder(performance, padding)
        keep = torch.ones_like(h[..., 0]) if padding is None else (~padding).to(h)
        return (h * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp_min(1.0)

    def style_of_long(self, performance: Tensor) -> Tensor:
        """The style of a performance of any length ``[1, T]``: ``[1, D]``.

        The ids are cut into consecutive windows of ``max_len`` and every window is encoded on its
        own; ``s`` is the mean of the encoder outputs over all ``T`` steps, i.e. the windows' pooled
        styles weighted by their lengths. One window (``T <= max_len``) gives ``style`` exactly.
        """
        if performance.dim() != 2 or performance.shape[0] != 1 or performance.shape[1] < 1:
            raise BadInputError(f"style_of_long takes one performance [1, T], got {tuple(performance.shape)}")
        windows = performance[0].split(self.cfg.max_len)
        total = sum(w.numel() * self.style(w[None]) for w in windows)
        assert isinstance(total, Tensor)  # at least one window
        return total / performance.shape[1]

    def memory(
        self,
        performance: Tensor | None = None,
        melody: Tensor | None = None,
        performance_padding: Tensor | None = None,
        melody_padding: Tensor | None = None,
        style: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor | None]:
        """The decoder memory and its padding mask for the model's conditioning.

        :param performance: ``[B, T]`` conditioning performance tokens (or pass ``style [B, D]``).
        :param melody: ``[B, Tm]`` melody tokens.
        :returns: ``(memory [B, M, Dm], padding [B, M] or None)``; ``(None, None)`` when unconditional.
        """
        if self.conditioning == "none":
            return None, None
        if self.uses_performance and style is None:
            if performance is None:
                raise BadInputError(f"conditioning={self.conditioning!r} needs a performance (or a style vector)")
            if not self.pool:
                return self.performance_encoder(performance, performance_padding), performance_padding
            style = self.style(performance, performance_padding)
        if style is not None and (style.dim() != 2 or style.shape[1] != self.cfg.dim):
            raise BadInputError(f"style must be [batch, {self.cfg.dim}], got {tuple(style.shape)}")
        if not self.uses_melody:
            assert style is not None  # performance conditioning: given or pooled above
            return style[:, None, :], None
        if melody is None:
            raise BadInputError(f"conditioning={self.conditioning!r} needs a melody")
        m = self.melody_encoder(melody, melody_padding)
        if not self.uses_performance:
            return m, melody_padding
        assert style is not None  # melody + performance: given or pooled above
        if style.shape[0] != m.shape[0]:
            raise BadInputError(f"style batch {style.shape[0]} != melody batch {m.shape[0]}")
        if self.combine == "sum":
            return m + style[:, None, :], melody_padding
        if self.combine == "concat":  # melody, a zero separator, the style (magenta score2perf)
            pad = (
                None
                if melody_padding is None
                else torch.cat([melody_padding, melody_padding.new_zeros(melody_padding.shape[0], 2)], dim=1)
            )
            return torch.cat([m, torch.zeros_like(m[:, :1]), style[:, None, :]], dim=1), pad
        return torch.cat([m, style[:, None, :].expand_as(m)], dim=-1), melody_padding  # tile

    def forward(
        self,
        tokens: Tensor,
        performance: Tensor | None = None,
        melody: Tensor | None = None,
        performance_padding: Tensor | None = None,
        melody_padding: Tensor | None = None,
    ) -> Tensor:
        """Next-token logits ``[B, L, V]`` of the target ``tokens`` given the conditioning."""
        memory, padding = self.memory(performance, melody, performance_padding, melody_padding)
        return self.decoder(tokens, memory, padding)
