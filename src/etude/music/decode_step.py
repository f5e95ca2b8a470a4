"""One decoder step of a Music Transformer in a few fused kernels per layer, for sampling.

The module path (``MusicTransformer.forward`` with a cache dict) spends each generated token on
about a hundred small ATen ops: per layer separate Q and K/V projections, a ``torch.cat`` that
copies the whole key and value cache, an einsum for the relative term, a causal mask built and
applied, a division, the softmax and the value product. ``DecodeStep`` keeps the same math and
the model's own parameters (read from its modules, never copied from elsewhere) and

- projects Q, K and V with one ``addmm`` against the concatenated ``[W_q; W_kv]``;
- writes K and V into preallocated buffers ``[B, H, max_len, Dh]`` (no copy of the prefix);
- adds ``Q K^T`` and the relative logits ``q_t . E_{j-t}`` (Huang et al. 2018, Eq. 2; read
  straight from the table, as the module's cached path does) with one ``baddbmm`` that also
  applies ``1 / sqrt(Dh)``; a single query needs no causal mask;
- uses ``F.layer_norm``, ``addmm`` and the feed-forward's own GELU setting.

The embedding (``embed_tokens``, scale and positions) and the first pass over the primer are the
model's own code: the primer goes through ``MusicTransformer.forward`` with a cache dict and its
keys and values are copied into the buffers. Tests check the step's logits against the full
forward pass (``<= 1e-5``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from etude.music.attention import RelativeAttention
from etude.music.transformer import DecoderLayer, MusicTransformer, embed_tokens

__all__ = ["DecodeStep", "supports"]


@dataclass
class _Layer:
    norm1: torch.nn.LayerNorm
    qkv_weight: Tensor  # [D, 3D]: x @ qkv_weight = [q | k | v]
    qkv_bias: Tensor
    attn: RelativeAttention
    norm2: torch.nn.LayerNorm | None
    cross: RelativeAttention | None
    norm3: torch.nn.LayerNorm
    ff_in: torch.nn.Linear
    ff_out: torch.nn.Linear
    gelu: str


def _layer(layer: DecoderLayer) -> _Layer:
    """The parameters of one decoder layer, Q and K/V projections concatenated (the module's own weights)."""
    ff_in, gelu, ff_out = layer.ff[0], layer.ff[1], layer.ff[2]
    assert isinstance(ff_in, torch.nn.Linear) and isinstance(ff_out, torch.nn.Linear)
    assert isinstance(gelu, torch.nn.GELU)
    norm2 = layer.norm2 if layer.cross is not None else None
    return _Layer(
        layer.norm1,
        torch.cat([layer.attn.q.weight, layer.attn.kv.weight]).T.contiguous(),
        torch.cat([layer.attn.q.bias, layer.attn.kv.bias]),
        layer.attn,
        norm2,
        layer.cross,
        layer.norm3,
        ff_in,
        ff_out,
        gelu.approximate,
    )


def supports(decoder: MusicTransformer) -> bool:
    """Whether every layer is the standard ``DecoderLayer`` this step reproduces."""
    return all(
        type(layer) is DecoderLayer
        and layer.attn.mode == "causal"
        and isinstance(layer.ff[1], torch.nn.GELU)
        and (layer.cross is None or layer.cross.mode == "cross")
        for layer in decoder.layers
    )


class DecodeStep:
    """Token-by-token decoding of ``decoder`` for ``batch`` rows, up to ``max_length`` positions.

    >>> step = DecodeStep(decoder, batch, max_length, memory, padding)
    >>> logits = step.prefill(primer)     # [B, V] for the primer's last position
    >>> logits = step(next_ids)           # [B, V] for each further token
    """

    def __init__(
        self,
        decoder: MusicTransformer,
        batch: int,
        max_length: int,
        memory: Tensor | None = None,
        padding: Tensor | None = None,
    ) -> None:
        self.decoder, self.cfg = decoder, decoder.cfg
        self.batch, self.memory, self.padding = batch, memory, padding
        layers = [layer for layer in decoder.layers if isinstance(layer, DecoderLayer)]
        first = layers[0].attn
        self.heads: int = first.heads
        self.head_dim: int = first.head_dim
        self.dim: int = first.dim
        self.max_len: int = first.max_len
        self.scale = 1.0 / math.sqrt(self.head_dim)
        weight = decoder.head.weight
        shape = (batch * self.heads, max_length, self.head_dim)
        self.keys = [weight.new_empty(shape) for _ in layers]
        self.values = [weight.new_empty(shape) for _ in layers]
        self.layers = [_layer(layer) for layer in layers]
        self.cross_kv: list[tuple[Tensor, Tensor] | None] = [None] * len(self.layers)
        self.cross_mask: Tensor | None = None
        self.length = 0

    def prefill(self, tokens: Tensor) -> Tensor:
        """Run the primer ``[B, L0]`` through the model's own forward; keep its keys and values: logits ``[B, V]``."""
        cache: dict = {}
        logits = self.decoder(tokens, self.memory, self.padding, cache)[:, -1]
        length = tokens.shape[1]
        for i, layer in enumerate(self.layers):
            entry = cache[i]["self"]
            self.keys[i][:, :length] = entry["k"].reshape(-1, length, self.head_dim)
            self.values[i][:, :length] = entry["v"].reshape(-1, length, self.head_dim)
            if layer.cross is not None:
                k, v = cache[i]["cross"]["k"], cache[i]["cross"]["v"]
                self.cross_kv[i] = (k.reshape(-1, *k.shape[2:]), v.reshape(-1, *v.shape[2:]))
        if self.padding is not None:
            mask = torch.zeros(self.padding.shape, dtype=logits.dtype, device=logits.device)
            mask = mask.masked_fill(self.padding, float("-inf"))
            self.cross_mask = mask[:, None, None, :].expand(-1, self.heads, 1, -1).reshape(-1, 1, mask.shape[-1])
        self.length = length
        return logits

    def _split(self, x: Tensor) -> Tensor:  # [B, D] -> [B H, 1, Dh]
        return x.reshape(self.batch * self.heads, 1, self.head_dim)

    def __call__(self, tokens: Tensor) -> Tensor:
        """Logits ``[B, V]`` for the next ids ``[B]`` at position ``self.length`` (which then advances)."""
        t = self.length
        b, h, dh = self.batch, self.heads, self.head_dim
        x = embed_tokens(self.decoder.embed, tokens[:, None], self.cfg, t)[:, 0]
        for i, layer in enumerate(self.layers):
            y = F.layer_norm(x, (self.dim,), layer.norm1.weight, layer.norm1.bias, layer.norm1.eps)
            qkv = torch.addmm(layer.qkv_bias, y, layer.qkv_weight)  # [B, 3D]
            q = self._split(qkv[:, : self.dim])
            keys, values = self.keys[i], self.values[i]
            keys[:, t] = qkv[:, self.dim : 2 * self.dim].reshape(b * h, dh)
            values[:, t] = qkv[:, 2 * self.dim :].reshape(b * h, dh)
            k, v = keys[:, : t + 1], values[:, : t + 1]
            if layer.attn.relative:
                m = self.max_len - 1
                table = layer.attn.table[:, m - t : m + 1]  # distances -t..0: [H, t+1, Dh]
                rel = torch.bmm(q.view(b, h, dh).transpose(0, 1), table.transpose(1, 2))  # [H, B, t+1]
                rel = rel.transpose(0, 1).reshape(b * h, 1, t + 1)
                logits = torch.baddbmm(rel, q, k.transpose(1, 2), beta=self.scale, alpha=self.scale)
            else:
                logits = torch.bmm(q, k.transpose(1, 2)).mul_(self.scale)
            attended = torch.bmm(torch.softmax(logits, -1), v).view(b, self.dim)
            x = x + F.linear(attended, layer.attn.out.weight, layer.attn.out.bias)
            if layer.cross is not None and layer.norm2 is not None:
                mk, mv = self.cross_kv[i]  # type: ignore[misc]
                y = F.layer_norm(x, (self.dim,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)
                cq = self._split(F.linear(y, layer.cross.q.weight, layer.cross.q.bias))
                if self.cross_mask is None:
                    cl = torch.bmm(cq, mk.transpose(1, 2)).mul_(self.scale)
                else:
                    cl = torch.baddbmm(self.cross_mask, cq, mk.transpose(1, 2), alpha=self.scale)
                attended = torch.bmm(torch.softmax(cl, -1), mv).view(b, self.dim)
                x = x + F.linear(attended, layer.cross.out.weight, layer.cross.out.bias)
            y = F.layer_norm(x, (self.dim,), layer.norm3.weight, layer.norm3.bias, layer.norm3.eps)
            y = F.gelu(torch.addmm(layer.ff_in.bias, y, layer.ff_in.weight.T), approximate=layer.gelu)
            x = torch.addmm(x, y, layer.ff_out.weight.T).add_(layer.ff_out.bias)
        self.length = t + 1
        norm = self.decoder.norm
        y = F.layer_norm(x, (self.dim,), norm.weight, norm.bias, norm.eps)
        return torch.addmm(self.decoder.head.bias, y, self.decoder.head.weight.T)
