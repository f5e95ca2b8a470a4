"""Sampling from a Music Transformer or Transformer autoencoder, with a key/value cache.

With the cache each new token costs one query against the stored keys and values of every
layer (relative logits read straight from the table), instead of a forward pass over the whole
prefix; ``cached_logits_match`` style tests check the two agree. By default that step is
`etude.music.decode_step.DecodeStep` (a few fused kernels per layer, preallocated key/value
buffers); ``fused=False`` runs the model's modules with a cache dict instead. Sampling: temperature, top-k,
nucleus (top-p, Holtzman et al. 2020), a seeded generator, a primer, a maximum length and
stopping at EOS per sequence. Style interpolation (Choi et al. Sec. 5.3) mixes two pooled style
vectors ``s = (1 - alpha) s_A + alpha s_B``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from etude.errors import BadInputError
from etude.music.autoencoder import TransformerAutoencoder
from etude.music.decode_step import DecodeStep, supports
from etude.music.events import PerformanceEncoding
from etude.music.transformer import MusicTransformer
from etude.runtime import progress
from etude.validation import check_int

__all__ = ["filter_logits", "generate", "interpolate_style"]


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Logits ``[B, V]`` divided by the temperature, with all but the top-k and the top-p nucleus at -inf."""
    if not temperature > 0:
        raise BadInputError(f"temperature must be > 0, got {temperature!r}")
    check_int("top_k", top_k, 0)
    if not 0 < top_p <= 1:
        raise BadInputError(f"top_p must be in (0, 1], got {top_p!r}")
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1:
        order = logits.sort(dim=-1, descending=True)
        mass = order.values.softmax(-1).cumsum(-1)
        drop = mass - order.values.softmax(-1) >= top_p  # tokens after the nucleus is full
        logits = logits.scatter(-1, order.indices, order.values.masked_fill(drop, float("-inf")))
    return logits


def interpolate_style(model: TransformerAutoencoder, a: Tensor, b: Tensor, alpha: float = 0.5) -> Tensor:
    """``(1 - alpha) s(a) + alpha s(b)`` for performance tokens ``a [1, Ta]`` and ``b [1, Tb]``: ``[1, D]``."""
    if not 0 <= alpha <= 1:
        raise BadInputError(f"alpha must be in [0, 1], got {alpha!r}")
    pad = PerformanceEncoding.PAD  # masked as ``generate`` masks a conditioning performance, so alpha 0 / 1 equal it
    return (1 - alpha) * model.style(a, a == pad) + alpha * model.style(b, b == pad)


@torch.no_grad()
def generate(
    model: MusicTransformer | TransformerAutoencoder,
    batch: int = 1,
    *,
    max_length: int = 256,
    performance: Tensor | None = None,
    melody: Tensor | None = None,
    style: Tensor | None = None,
    primer: Tensor | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    eos: int | None = PerformanceEncoding.EOS,
    use_cache: bool = True,
    fused: bool = True,
    show_progress: bool | None = None,
) -> Tensor:
    """Sample ``batch`` sequences; returns ids ``[B, <= max_length]`` (the primer first, PAD after EOS).

    :param model: a ``MusicTransformer`` (unconditional) or a ``TransformerAutoencoder``
        conditioned by ``performance [1 or B, T]``, ``melody [1 or B, Tm]`` (PAD = 0 steps are masked)
        or ``style [1 or B, D]``.
    :param primer: ``[T0]`` or ``[1 or B, T0]`` ids to continue; default one BOS (the last id).
    :param max_length: total length including the primer (at most the model's ``max_len``).
    :param eos: a sequence stops after sampling this id (``None``: never).
    :param use_cache: False recomputes the full prefix each step (the slow reference).
    :param fused: with the cache, step with `DecodeStep` (True) or the model's modules (False); same logits.
    """
    decoder = _decoder_of(model)
    check_int("batch", batch, 1)
    cfg = decoder.cfg
    check_int("max_length", max_length, 1, cfg.max_len)
    filter_logits(torch.zeros(1, 2), temperature, top_k, top_p)  # validate the sampling settings early
    device = decoder.head.weight.device
    tokens = _primed(primer, batch, max_length, cfg.vocab_size - 1, device)
    memory, padding = _conditioning(model, batch, performance, melody, style)
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    step = (
        DecodeStep(decoder, batch, max_length, memory, padding) if use_cache and fused and supports(decoder) else None
    )
    next_logits = _next_logits(decoder, step, memory, padding, {} if use_cache else None)
    bar = progress(
        total=max_length - tokens.shape[1],
        desc="generating",
        disable=None if show_progress is None else not show_progress,
    )
    try:
        sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        return _sample(next_logits, tokens, max_length, generator, sampling, eos=eos, bos=cfg.vocab_size - 1, bar=bar)
    finally:
        bar.close()
        model.train(was_training)


def _decoder_of(model: MusicTransformer | TransformerAutoencoder) -> MusicTransformer:
    """The decoder that ``generate`` samples from: the model itself or an autoencoder's decoder."""
    decoder = model.decoder if isinstance(model, TransformerAutoencoder) else model
    if not isinstance(decoder, MusicTransformer):
        raise BadInputError(f"model must be a MusicTransformer or TransformerAutoencoder, got {type(model).__name__}")
    return decoder


def _primed(primer: Tensor | None, batch: int, max_length: int, bos: int, device: torch.device) -> Tensor:
    """The primer ``[batch, T0]`` on ``device`` (one ``bos`` by default), checked against ``batch`` and ``max_length``."""
    if primer is None:
        primer = torch.full((1, 1), bos, dtype=torch.long)
    primer = (primer[None] if primer.dim() == 1 else primer).to(device)
    if primer.shape[0] not in (1, batch):
        raise BadInputError(f"primer batch must be 1 or {batch}, got {primer.shape[0]}")
    if primer.shape[1] > max_length:
        raise BadInputError(f"primer length {primer.shape[1]} exceeds max_length {max_length}")
    return primer.expand(batch, -1).clone()


def _conditioning(
    model: MusicTransformer | TransformerAutoencoder,
    batch: int,
    performance: Tensor | None,
    melody: Tensor | None,
    style: Tensor | None,
) -> tuple[Tensor | None, Tensor | None]:
    """(memory ``[batch, S, D]``, its padding mask ``[batch, S]``) of an autoencoder's conditioning; None for none."""
    if not isinstance(model, TransformerAutoencoder):
        return None, None
    pad = PerformanceEncoding.PAD  # 0 in both encodings; a padded row's PAD steps are masked out
    memory, padding = model.memory(
        performance,
        melody,
        None if performance is None else performance == pad,
        None if melody is None else melody == pad,
        style=style,
    )
    if memory is None:
        return memory, padding
    if memory.shape[0] not in (1, batch):
        raise BadInputError(f"conditioning batch must be 1 or {batch}, got {memory.shape[0]}")
    return memory.expand(batch, -1, -1), None if padding is None else padding.expand(batch, -1)


def _next_logits(
    decoder: MusicTransformer,
    step: DecodeStep | None,
    memory: Tensor | None,
    padding: Tensor | None,
    cache: dict | None,
):
    """A function (new ids ``[B, t]``, all ids ``[B, T]``) -> logits ``[B, V]`` of the next token.

    With ``step`` (the fused cached step) it prefills on the first call, then feeds one id; without it the
    decoder reads the new ids against ``cache``, or the whole prefix when ``cache`` is None.
    """

    def next_logits(step_input: Tensor, tokens: Tensor) -> Tensor:
        if step is not None:
            return step(step_input[:, 0]) if step.length else step.prefill(step_input)
        return decoder(step_input if cache is not None else tokens, memory, padding, cache)[:, -1]

    return next_logits


def _sample(
    next_logits, tokens: Tensor, max_length: int, generator: torch.Generator, sampling: dict, *, eos, bos: int, bar
) -> Tensor:
    """Append ids sampled with ``sampling`` (``filter_logits``'s settings) to ``tokens`` until ``max_length`` or
    until every row has sampled ``eos`` (PAD after it); PAD and ``bos`` are never sampled."""
    done = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    step_input = tokens
    while tokens.shape[1] < max_length and not done.all():
        logits = next_logits(step_input, tokens)
        logits[:, [PerformanceEncoding.PAD, bos]] = float("-inf")  # never PAD or BOS
        probs = filter_logits(logits.float(), **sampling).softmax(-1)
        nxt = torch.multinomial(probs, 1, generator=generator)[:, 0]
        nxt = nxt.masked_fill(done, PerformanceEncoding.PAD)
        if eos is not None:
            done = done | (nxt == eos)
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        step_input = nxt[:, None]
        bar.update(1)
    return tokens
