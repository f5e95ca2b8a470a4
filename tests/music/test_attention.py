"""Relative attention: the skew trick against an explicit loop, causality, the bidirectional form."""

from __future__ import annotations

import pytest
import torch

from etude.errors import BadInputError
from etude.music.attention import RelativeAttention, relative_logits_loop, skew_bidirectional, skew_causal
from etude.music.transformer import MusicTransformer, TransformerConfig


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("length", [1, 2, 7, 12])
@pytest.mark.parametrize("mode", ["causal", "bidirectional"])
def test_skew_equals_brute_force(seed, length, mode):
    torch.manual_seed(seed)
    attn = RelativeAttention(dim=12, heads=3, max_len=12, mode=mode)
    q = torch.randn(2, 3, length, 4, dtype=torch.float64)
    table = attn.table.detach().double()
    attn.table.data = table
    fast = attn.relative_logits(q).detach()
    slow = relative_logits_loop(q, table, causal=mode == "causal")
    if mode == "causal":
        fast = fast.tril()  # the masked skew is only defined on and below the diagonal
    torch.testing.assert_close(fast, slow, atol=1e-12, rtol=0)


def test_skew_functions_on_known_values():
    # qe[i, m] = 10 i + m; causal S[i, j] = qe[i, j - i + L - 1]; bidirectional the same with 2L-1 columns
    L = 4
    qe = (10 * torch.arange(L)[:, None] + torch.arange(L)[None]).float()
    s = skew_causal(qe)
    for i in range(L):
        for j in range(i + 1):
            assert s[i, j] == 10 * i + (j - i + L - 1)
    qe2 = (10 * torch.arange(L)[:, None] + torch.arange(2 * L - 1)[None]).float()
    s2 = skew_bidirectional(qe2)
    expected = torch.tensor([[10 * i + j - i + L - 1 for j in range(L)] for i in range(L)]).float()
    assert torch.equal(s2, expected)


def test_skew_bidirectional_rejects_wrong_width():
    with pytest.raises(BadInputError, match="2L-1"):
        skew_bidirectional(torch.zeros(3, 4))


@pytest.mark.parametrize("relative,absolute", [(True, False), (False, True), (True, True)])
def test_decoder_is_causal(relative, absolute):
    torch.manual_seed(0)
    cfg = TransformerConfig(dim=16, heads=2, layers=2, ff=32, max_len=20, dropout=0.0, relative=relative, absolute=absolute)
    model = MusicTransformer(cfg).eval()
    x = torch.randint(2, 390, (2, 15))
    y = x.clone()
    y[:, 9] = (y[:, 9] + 7) % 388 + 2  # change one token
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :9], b[:, :9], atol=1e-6, rtol=0)  # earlier logits unchanged
    assert (a[:, 9:] - b[:, 9:]).abs().max() > 1e-4  # later logits do change


def test_bidirectional_attention_sees_the_future():
    torch.manual_seed(0)
    attn = RelativeAttention(16, 2, 10, "bidirectional").eval()
    x = torch.randn(1, 8, 16)
    y = x.clone()
    y[:, 7] += 1.0
    assert (attn(x)[:, 0] - attn(y)[:, 0]).abs().max() > 1e-4


def test_relative_attention_is_translation_invariant_without_padding():
    # no absolute positions: a query's output depends only on relative offsets, so shifting a
    # sequence of identical tokens leaves the outputs at matching offsets unchanged
    torch.manual_seed(3)
    attn = RelativeAttention(8, 2, 16, "causal").eval()
    x = torch.randn(1, 6, 8)
    longer = torch.cat([x, torch.randn(1, 4, 8)], dim=1)
    torch.testing.assert_close(attn(x), attn(longer)[:, :6], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(dim=10, heads=3, max_len=4), "divisible"),
    (dict(dim=8, heads=2, max_len=4, mode="sideways"), "mode"),
])
def test_bad_attention_settings(kwargs, match):
    with pytest.raises(BadInputError, match=match):
        RelativeAttention(**kwargs)


def test_too_long_sequence_is_refused():
    attn = RelativeAttention(8, 2, 4, "causal")
    with pytest.raises(BadInputError, match="max_len"):
        attn(torch.randn(1, 5, 8))


def _projections(attn: RelativeAttention, x: torch.Tensor):
    q = attn._split(attn.q(x))
    k, v = (attn._split(t) for t in attn.kv(x).chunk(2, dim=-1))
    return q, k, v


def _merge(attn: RelativeAttention, heads_out: torch.Tensor) -> torch.Tensor:
    b, _, length, _ = heads_out.shape
    return attn.out(heads_out.transpose(1, 2).reshape(b, length, attn.dim))


@pytest.mark.parametrize("mode", ["causal", "bidirectional"])
@pytest.mark.parametrize("padded", [False, True])
def test_plain_attention_equals_scaled_dot_product_attention(mode, padded):
    # relative=False must be exactly softmax(Q K^T / sqrt(Dh)) V: torch's SDPA is the reference
    torch.manual_seed(4)
    attn = RelativeAttention(24, 3, 16, mode, relative=False).double().eval()
    x = torch.randn(2, 11, 24, dtype=torch.float64)
    pad = torch.zeros(2, 11, dtype=torch.bool)
    if padded:
        pad[1, 8:] = True  # the last keys of row 1 are padding
    q, k, v = _projections(attn, x)
    mask = ~pad[:, None, None, :]
    if mode == "causal":
        mask = mask & torch.ones(11, 11, dtype=torch.bool).tril()
    ref = _merge(attn, torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    with torch.no_grad():
        out = attn(x, key_padding=pad if padded else None)
    torch.testing.assert_close(out, ref.detach(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("mode", ["causal", "bidirectional"])
def test_relative_attention_equals_eq2_with_loop_logits(mode):
    # Huang et al. Eq. 2: softmax((Q K^T + S_rel) / sqrt(Dh)) V, S_rel from the explicit loop
    torch.manual_seed(5)
    attn = RelativeAttention(24, 3, 16, mode).double().eval()
    x = torch.randn(2, 10, 24, dtype=torch.float64)
    q, k, v = _projections(attn, x)
    logits = q @ k.transpose(-1, -2) + relative_logits_loop(q, attn.table.double(), causal=mode == "causal")
    if mode == "causal":
        logits = logits.masked_fill(torch.ones(10, 10, dtype=torch.bool).triu(1), float("-inf"))
    ref = _merge(attn, torch.softmax(logits / attn.head_dim ** 0.5, dim=-1) @ v)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), ref.detach(), atol=1e-12, rtol=0)

