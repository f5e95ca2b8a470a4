"""Relative self-attention with the skew trick (Huang et al., Music Transformer, arXiv:1809.04281, Sec. 3.4).

Relative logits ``S_rel[i, j] = q_i . E_{j - i}`` add to ``Q K^T`` before the softmax (Eq. 2 of
Huang et al.: ``softmax((Q K^T + S_rel) / sqrt(D_h)) V``). The paper's skew computes ``S_rel``
from ``Q E^T`` (shape ``L x L``) by padding, reshaping and slicing, so memory is ``O(L D)`` for
the embeddings and ``O(L^2)`` for the logits, never the ``O(L^2 D)`` of gathering ``E`` per pair.

- causal (decoder): distances ``-(L-1) .. 0`` and the *masked* skew (valid only below the diagonal);
- bidirectional (encoder, Choi et al. arXiv:1912.05537 Sec. 3.2): distances ``-(L-1) .. L-1``,
  ``2L - 1`` embeddings and the analogous flat-view skew (exact everywhere).

Embedding tables are per head and indexed so that entry ``max_len - 1 + d`` holds distance ``d``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from etude.errors import BadInputError

__all__ = ["RelativeAttention", "relative_logits_loop", "skew_bidirectional", "skew_causal", "sinusoids"]


def skew_causal(qe: Tensor) -> Tensor:
    """The masked skew: ``qe[..., i, m] = q_i . E_{m-(L-1)}`` -> ``S[..., i, j] = q_i . E_{j-i}`` for ``j <= i``.

    Pad one zero column on the left, reshape ``[L, L+1] -> [L+1, L]`` and drop the first row
    (Huang et al. Sec. 3.4.1). Entries above the diagonal are meaningless and must be masked.

    :param qe: ``[..., L, L]``, the product ``Q E^T`` with ``E`` holding distances ``-(L-1)..0``.
    """
    *lead, length, width = qe.shape
    padded = nn.functional.pad(qe, (1, 0))  # [..., L, L+1]
    return padded.reshape(*lead, length + 1, width)[..., 1:, :]


def skew_bidirectional(qe: Tensor) -> Tensor:
    """The ``2L-1`` skew: ``qe[..., i, m] = q_i . E_{m-(L-1)}`` -> ``S[..., i, j] = q_i . E_{j-i}`` for all ``i, j``.

    Row ``i`` of the flattened ``[L, 2L-1]`` array starts at ``i (2L-1)``; the wanted entry
    ``(i, j)`` sits at ``i (2L-1) + j + L-1-i = (L-1) + i (2L-2) + j``, so a flat view that drops
    ``L-1`` leading entries and one trailing entry, read as ``[L, 2L-2]``, holds ``S`` in its first
    ``L`` columns.

    :param qe: ``[..., L, 2L-1]``, the product ``Q E^T`` with ``E`` holding distances ``-(L-1)..L-1``.
    """
    *lead, length, width = qe.shape
    if width != 2 * length - 1:
        raise BadInputError(f"skew_bidirectional expects [..., L, 2L-1], got {tuple(qe.shape)}")
    if length == 1:
        return qe
    flat = qe.reshape(*lead, length * width)[..., length - 1 : length - 1 + length * (width - 1)]
    return flat.reshape(*lead, length, width - 1)[..., :length]


def relative_logits_loop(q: Tensor, table: Tensor, causal: bool) -> Tensor:
    """Brute force ``S[b, h, i, j] = q[b, h, i] . table[h, max_len - 1 + j - i]`` by explicit loops (the oracle).

    :param q: ``[B, H, L, Dh]``; ``table``: ``[H, max_len, Dh]`` (causal) or ``[H, 2 max_len - 1, Dh]``.
    :returns: ``[B, H, L, L]``; with ``causal`` the entries above the diagonal are 0.
    """
    length = q.shape[2]
    max_len = table.shape[1] if causal else (table.shape[1] + 1) // 2
    out = torch.zeros(*q.shape[:3], length, dtype=q.dtype)
    for i in range(length):
        for j in range(length):
            if causal and j > i:
                continue
            out[:, :, i, j] = (q[:, :, i] * table[None, :, max_len - 1 + j - i]).sum(-1)
    return out


def sinusoids(length: int, dim: int, offset: int = 0) -> Tensor:
    """Absolute sinusoidal positions (Vaswani et al. Sec. 3.5) for positions ``offset .. offset+length-1``: ``[length, dim]``."""
    position = torch.arange(offset, offset + length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(length, dim)
    out[:, 0::2] = torch.sin(position * freq)
    out[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return out


class RelativeAttention(nn.Module):
    """Multi-head attention ``softmax((Q K^T + S_rel) / sqrt(Dh)) V`` (Huang et al. Eq. 2).

    :param dim: model width ``D``; ``heads``: ``H`` (``D % H == 0``).
    :param max_len: longest sequence the relative table covers.
    :param mode: 'causal' (decoder self-attention), 'bidirectional' (encoder) or 'cross'
        (queries attend to a memory; no relative term).
    :param relative: add the relative term (False: plain attention, for the absolute baseline).
    :param memory_dim: width of the memory in 'cross' mode (default ``dim``).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        max_len: int,
        mode: str = "causal",
        relative: bool = True,
        memory_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if mode not in ("causal", "bidirectional", "cross"):
            raise BadInputError(f"mode must be 'causal', 'bidirectional' or 'cross', got {mode!r}")
        if dim % heads:
            raise BadInputError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.dim, self.heads, self.head_dim, self.max_len, self.mode = dim, heads, dim // heads, max_len, mode
        self.relative = relative and mode != "cross"
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(memory_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        if self.relative:
            size = max_len if mode == "causal" else 2 * max_len - 1
            self.table = nn.Parameter(torch.randn(heads, size, self.head_dim) * self.head_dim**-0.5)

    def _split(self, x: Tensor) -> Tensor:  # [B, L, D] -> [B, H, L, Dh]
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def relative_logits(self, q: Tensor) -> Tensor:
        """``S_rel`` for queries ``q`` ``[B, H, L, Dh]`` at positions ``0..L-1`` by the skew: ``[B, H, L, L]``."""
        length = q.shape[2]
        if length > self.max_len:
            raise BadInputError(f"sequence length {length} exceeds max_len {self.max_len}")
        m = self.max_len - 1
        if self.mode == "causal":
            e = self.table[:, m - length + 1 :]  # distances -(L-1)..0: [H, L, Dh]
            return skew_causal(torch.einsum("bhld,hmd->bhlm", q, e))
        e = self.table[:, m - length + 1 : m + length]  # distances -(L-1)..L-1: [H, 2L-1, Dh]
        return skew_bidirectional(torch.einsum("bhld,hmd->bhlm", q, e))

    def forward(
        self, x: Tensor, memory: Tensor | None = None, key_padding: Tensor | None = None, cache: dict | None = None
    ) -> Tensor:
        """Attend; shapes ``x [B, L, D]``, ``memory [B, M, Dm]``, ``key_padding`` bool ``[B, L or M]`` (True = pad).

        ``cache`` (a dict, updated in place) makes causal self-attention incremental: ``x`` holds
        the new positions ``t .. t+L-1`` after the cached ``t``; in 'cross' mode it keeps the
        memory's keys and values. Returns ``[B, L, D]``.
        """
        q = self._split(self.q(x))
        if self.mode == "cross":
            if cache is not None and "k" in cache:
                k, v = cache["k"], cache["v"]
            else:
                if memory is None:
                    raise BadInputError("cross attention needs a memory")
                k, v = (self._split(t) for t in self.kv(memory).chunk(2, dim=-1))
                if cache is not None:
                    cache["k"], cache["v"] = k, v
        else:
            k, v = (self._split(t) for t in self.kv(x).chunk(2, dim=-1))
            if cache is not None and "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            if cache is not None:
                cache["k"], cache["v"] = k, v
        logits = q @ k.transpose(-1, -2)  # Q K^T: [B, H, Lq, Lk]
        lq, lk = q.shape[2], k.shape[2]
        start = lk - lq  # position of the first query
        if self.relative:
            if start == 0:
                logits = logits + self.relative_logits(q)
            else:  # cached causal step(s): distances j - i for keys 0..lk-1 read straight from the table
                if lk > self.max_len:
                    raise BadInputError(f"sequence length {lk} exceeds max_len {self.max_len}")
                m = self.max_len - 1
                e = self.table[:, m - lk + 1 :]  # distances -(lk-1)..0
                rel = torch.einsum("bhld,hmd->bhlm", q, e)  # [B, H, lq, lk], column c = distance c-(lk-1)
                if lq == 1:  # the query sits at position lk-1: column j is exactly distance j-(lk-1)
                    logits = logits + rel
                else:  # queries at lk-lq..lk-1: skew as if the rows above were there (rows are independent)
                    logits = logits + skew_causal(nn.functional.pad(rel, (0, 0, lk - lq, 0)))[..., lk - lq :, :]
        if self.mode == "causal":
            future = torch.ones(lq, lk, dtype=torch.bool, device=x.device).triu(start + 1)
            logits = logits.masked_fill(future, float("-inf"))
        if key_padding is not None:
            logits = logits.masked_fill(key_padding[:, None, None, :], float("-inf"))
        weights = self.dropout(torch.softmax(logits / math.sqrt(self.head_dim), dim=-1))
        out = (weights @ v).transpose(1, 2).reshape(x.shape[0], lq, self.dim)
        return self.out(out)
