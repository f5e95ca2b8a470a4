"""The Music Transformer (Huang et al., arXiv:1809.04281): a decoder-only Transformer with relative attention.

Pre-norm layers (``x + Attn(LN(x))``, ``x + FFN(LN(x))``). Optional absolute sinusoidal
positions as in the official setups, and an optional cross-attention to a memory so that the
same decoder serves the Transformer autoencoder (Choi et al., arXiv:1912.05537, Sec. 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from etude.errors import BadInputError
from etude.music.attention import RelativeAttention, sinusoids

__all__ = [
    "DecoderLayer",
    "EncoderLayer",
    "MusicTransformer",
    "TransformerConfig",
    "check_tokens",
    "embed_tokens",
    "token_embedding",
]


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of a Music Transformer (official: 8 heads, width 384-512, 6-10 layers, length 2048)."""

    vocab_size: int = 391
    """Output and input vocabulary (PerformanceEncoding().vocab_size = 391)."""
    dim: int = 64
    """Model width D."""
    heads: int = 4
    """Attention heads H."""
    layers: int = 2
    """Decoder layers."""
    ff: int = 256
    """Hidden width of the feed-forward blocks."""
    max_len: int = 256
    """Longest sequence the relative tables and generation cover."""
    relative: bool = True
    """Relative attention (False: plain attention, the absolute baseline)."""
    absolute: bool = True
    """Add sinusoidal absolute positions to the embeddings (tensor2tensor's ``pos="timing"``, kept by
    magenta's relative-attention hparams; without them cross-attention sees no position)."""
    dropout: float = 0.1
    """Dropout on attention weights and residual branches."""

    def as_dict(self) -> dict:
        return asdict(self)


def check_tokens(tokens: object, vocab_size: int, max_len: int, what: str = "tokens") -> Tensor:
    """Validate a ``[B, L]`` int64 tensor of ids in ``[0, vocab_size)`` with ``1 <= L <= max_len``."""
    if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.dtype != torch.long:
        shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
        raise BadInputError(
            f"{what} must be an int64 tensor [batch, length], got {shape}"
            + (f" {tokens.dtype}" if isinstance(tokens, Tensor) else "")
        )
    if tokens.shape[0] < 1 or not 1 <= tokens.shape[1] <= max_len:
        raise BadInputError(
            f"{what} must have batch >= 1 and 1 <= length <= max_len={max_len}, got {tuple(tokens.shape)}"
        )
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise BadInputError(f"{what} must be ids in [0, {vocab_size}), got {int(tokens.min())}..{int(tokens.max())}")
    return tokens


def token_embedding(vocab_size: int, dim: int) -> nn.Embedding:
    """A ``[V, D]`` embedding drawn from ``N(0, D^-1/2)`` (std ``D^-1/2``), as tensor2tensor draws it.

    ``embed_tokens`` multiplies it by ``sqrt(D)``, so a token's coordinates have unit scale, like
    the sinusoids' (tensor2tensor ``layers/modalities.py``: ``random_normal_initializer(0.0,
    hidden_size**-0.5)`` and ``multiply_embedding_mode="sqrt_depth"``). PyTorch's default ``N(0, 1)``
    times ``sqrt(D)`` makes tokens ``sqrt(D)`` times larger than the positions (11x at D = 128),
    which drowns them.
    """
    embedding = nn.Embedding(vocab_size, dim)
    nn.init.normal_(embedding.weight, mean=0.0, std=dim**-0.5)
    return embedding


def embed_tokens(embedding: nn.Embedding, tokens: Tensor, cfg: TransformerConfig, offset: int = 0) -> Tensor:
    """``sqrt(D) E[x_t] + PE(offset + t)`` (Vaswani et al. Sec. 3.4-3.5); ``PE`` only when ``cfg.absolute``.

    The one input embedding of the decoder and both encoders (``E`` from ``token_embedding``, so
    both terms have unit scale). Relative attention adds positions inside self-attention only;
    cross-attention has no relative term, so the sinusoids added here are what aligns decoder
    steps with encoder steps (magenta's Music Transformer hparams keep tensor2tensor's timing
    signal beside relative attention: ``magenta/models/score2perf/score2perf_hparams.py`` starts
    from ``transformer_base`` and changes only ``self_attention_type``). ``tokens [B, L] -> [B, L, D]``.
    """
    x = embedding(tokens) * cfg.dim**0.5
    if cfg.absolute:
        x = x + sinusoids(tokens.shape[1], cfg.dim, offset).to(x)
    return x


class _FeedForward(nn.Sequential):
    def __init__(self, dim: int, ff: int, dropout: float) -> None:
        super().__init__(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim), nn.Dropout(dropout))


class EncoderLayer(nn.Module):
    """Bidirectional relative self-attention (``2L-1`` form) + feed-forward."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(cfg.dim), nn.LayerNorm(cfg.dim)
        self.attn = RelativeAttention(
            cfg.dim, cfg.heads, cfg.max_len, "bidirectional", cfg.relative, dropout=cfg.dropout
        )
        self.ff = _FeedForward(cfg.dim, cfg.ff, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), key_padding=padding))
        return x + self.ff(self.norm2(x))


class DecoderLayer(nn.Module):
    """Causal relative self-attention, optional cross-attention to a memory, feed-forward."""

    def __init__(self, cfg: TransformerConfig, memory_dim: int | None = None) -> None:
        super().__init__()
        self.norm1, self.norm3 = nn.LayerNorm(cfg.dim), nn.LayerNorm(cfg.dim)
        self.attn = RelativeAttention(cfg.dim, cfg.heads, cfg.max_len, "causal", cfg.relative, dropout=cfg.dropout)
        self.cross = None
        if memory_dim is not None:
            self.norm2 = nn.LayerNorm(cfg.dim)
            self.cross = RelativeAttention(
                cfg.dim, cfg.heads, cfg.max_len, "cross", memory_dim=memory_dim, dropout=cfg.dropout
            )
        self.ff = _FeedForward(cfg.dim, cfg.ff, cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: Tensor, memory: Tensor | None = None, memory_padding: Tensor | None = None, cache: dict | None = None
    ) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), cache=None if cache is None else cache.setdefault("self", {})))
        if self.cross is not None:
            x = x + self.drop(
                self.cross(
                    self.norm2(x),
                    memory,
                    key_padding=memory_padding,
                    cache=None if cache is None else cache.setdefault("cross", {}),
                )
            )
        return x + self.ff(self.norm3(x))


class MusicTransformer(nn.Module):
    """Decoder-only Transformer over performance tokens; ``forward(tokens) -> logits [B, L, V]``.

    :param cfg: sizes (see ``TransformerConfig``).
    :param memory_dim: width of a memory to cross-attend to (``None``: unconditional).
    """

    def __init__(self, cfg: TransformerConfig = TransformerConfig(), memory_dim: int | None = None) -> None:
        super().__init__()
        self.cfg, self.memory_dim = cfg, memory_dim
        self.embed = token_embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(DecoderLayer(cfg, memory_dim) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        tokens: Tensor,
        memory: Tensor | None = None,
        memory_padding: Tensor | None = None,
        cache: dict | None = None,
    ) -> Tensor:
        """Next-token logits ``[B, L, V]`` for ``tokens [B, L]``.

        With ``cache`` (a dict filled in place), ``tokens`` continue the cached prefix, whose
        length is ``cache['length']``; the logits equal those of the full forward pass.
        """
        offset = 0 if cache is None else cache.get("length", 0)
        check_tokens(tokens, self.cfg.vocab_size, self.cfg.max_len - offset)
        if (memory is None) != (self.memory_dim is None) and not (cache is not None and offset > 0):
            raise BadInputError("this model " + ("needs a memory" if self.memory_dim else "takes no memory"))
        x = self.drop(embed_tokens(self.embed, tokens, self.cfg, offset))
        for i, layer in enumerate(self.layers):
            x = layer(x, memory, memory_padding, None if cache is None else cache.setdefault(i, {}))
        if cache is not None:
            cache["length"] = offset + tokens.shape[1]
        return self.head(self.norm(x))
