"""KV-cached generation equals the full forward pass; sampling options; style interpolation."""

from __future__ import annotations

import pytest
import torch

from etude.errors import BadInputError
from etude.music import COMBINES, CONDITIONINGS, PerformanceEncoding, TransformerAutoencoder, TransformerConfig
from etude.music.generate import filter_logits, generate, interpolate_style


EOS, PAD = PerformanceEncoding.EOS, PerformanceEncoding.PAD


def tiny(conditioning="performance", combine="sum", seed=0, relative=True, absolute=False, pool=True):
    torch.manual_seed(seed)
    cfg = TransformerConfig(dim=16, heads=2, layers=2, ff=32, max_len=32, dropout=0.0, relative=relative,
                            absolute=absolute)
    return TransformerAutoencoder(cfg, conditioning, combine, pool, encoder_layers=1).eval()


@pytest.mark.parametrize("seed,conditioning,combine,relative,absolute", [
    *[(s, "melody+performance", "tile", True, False) for s in (1, 2)],
    *[(0, c, "sum", True, False) for c in CONDITIONINGS],
    *[(0, "melody+performance", c, True, False) for c in COMBINES[1:]],
    (0, "none", "sum", False, True), (0, "performance", "sum", True, True),
])
def test_cached_logits_equal_full_forward(seed, conditioning, combine, relative, absolute):
    model = tiny(conditioning, combine, seed, relative, absolute)
    torch.manual_seed(seed + 100)
    x, perf, mel = torch.randint(2, 390, (3, 25)), torch.randint(2, 390, (3, 9)), torch.randint(4, 92, (3, 7))
    full = model(x, perf, mel)
    memory, padding = model.memory(perf, mel)
    cache: dict = {}
    pieces = [model.decoder(x[:, :4], memory, padding, cache)]  # a primer, then one token at a time
    pieces += [model.decoder(x[:, t:t + 1], memory, padding, cache) for t in range(4, 25)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)


def test_cached_and_recomputed_generation_agree():
    model = tiny("melody+performance", "concat")
    perf, mel = torch.randint(2, 390, (1, 9)), torch.randint(4, 92, (1, 7))
    fast = generate(model, 3, max_length=20, performance=perf, melody=mel, seed=5, eos=None)
    slow = generate(model, 3, max_length=20, performance=perf, melody=mel, seed=5, eos=None, use_cache=False)
    assert torch.equal(fast, slow)
    assert fast.shape == (3, 20) and (fast[:, 0] == 390).all()


def test_seed_determinism_and_variety():
    model = tiny("none")
    a, b = generate(model, 2, max_length=16, seed=1, eos=None), generate(model, 2, max_length=16, seed=1, eos=None)
    c = generate(model, 2, max_length=16, seed=2, eos=None)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_greedy_top_k_1_follows_the_argmax():
    model = tiny("none")
    out = generate(model, 1, max_length=10, top_k=1, eos=None)
    logits = model(out[:, :-1])
    logits[..., [PAD, 390]] = float("-inf")
    assert torch.equal(logits.argmax(-1), out[:, 1:])


def test_stops_at_eos_and_pads_after():
    model = tiny("none")
    with torch.no_grad():
        model.decoder.head.bias[EOS] = 50.0  # EOS almost surely first
    out = generate(model, 2, max_length=20)
    assert out.shape == (2, 2) and (out[:, 1] == EOS).all()
    with torch.no_grad():
        model.decoder.head.bias[EOS] = 0.0
        model.decoder.head.bias[5] = 50.0
    assert generate(model, 1, max_length=12).shape == (1, 12)


def test_primer_is_kept():
    model = tiny("none")
    primer = torch.tensor([390, 62, 300, 190])
    out = generate(model, 2, max_length=12, primer=primer, eos=None)
    assert torch.equal(out[:, :4], primer.expand(2, -1))


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)[0, 2:]).all()
    kept = ~torch.isinf(filter_logits(logits, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.7 <= 0.8: two tokens form the nucleus
    kept = ~torch.isinf(filter_logits(logits, top_p=0.5))
    assert kept.tolist() == [[True, False, False, False]]
    torch.testing.assert_close(filter_logits(logits, temperature=2.0), logits / 2)


def test_style_interpolation_endpoints():
    model = tiny("performance")
    a, b = torch.randint(2, 390, (1, 8)), torch.randint(2, 390, (1, 11))
    torch.testing.assert_close(interpolate_style(model, a, b, 0.0), model.style(a))
    torch.testing.assert_close(interpolate_style(model, a, b, 1.0), model.style(b))
    mid = interpolate_style(model, a, b, 0.5)
    torch.testing.assert_close(mid, (model.style(a) + model.style(b)) / 2)
    out = generate(model, 1, max_length=10, style=mid, seed=0)
    assert out.shape[1] <= 10


@pytest.mark.parametrize("conditioning,combine", [("performance", "sum"), ("melody+performance", "sum"),
                                                  ("melody+performance", "concat"), ("melody+performance", "tile")])
def test_interpolation_endpoints_reproduce_conditioned_generation_exactly(conditioning, combine):
    model = tiny(conditioning, combine, seed=3)
    a, b = torch.randint(2, 390, (1, 9)), torch.randint(2, 390, (1, 13))
    b[0, -4:] = PAD  # a padded row: its PAD steps are masked out of the pooled style, as in generate
    melody = torch.randint(1, 93, (1, 7)) if model.uses_melody else None
    kw = {"max_length": 24, "melody": melody, "eos": None, "seed": 5}
    for alpha, source in ((0.0, a), (1.0, b)):
        direct = generate(model, 1, performance=source, **kw)
        assert torch.equal(generate(model, 1, style=interpolate_style(model, a, b, alpha), **kw), direct)
    # the endpoints differ from each other and from the midpoint, so the equalities above are not vacuous
    ends = [interpolate_style(model, a, b, x) for x in (0.0, 0.5, 1.0)]
    assert not torch.equal(ends[0], ends[1]) and not torch.equal(ends[1], ends[2])
    logits = [model.decoder(torch.full((1, 1), 390), *model.memory(melody=melody, style=s))[0, -1] for s in ends]
    assert (logits[0] - logits[2]).abs().max() > 1e-4


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch=0), "batch"), (dict(max_length=33), "max_length"), (dict(temperature=0.0), "temperature"),
    (dict(top_k=-1), "top_k"), (dict(top_p=0.0), "top_p"), (dict(primer=torch.zeros(1, 40, dtype=torch.long)), "primer"),
    (dict(performance=None), "needs a performance"),
])
def test_bad_generation_arguments(kwargs, match):
    model = tiny("performance")
    args = dict(performance=torch.randint(2, 390, (1, 5)), max_length=10)
    with pytest.raises(BadInputError, match=match):
        generate(model, **{**args, **kwargs})
    with pytest.raises(BadInputError, match="alpha"):
        interpolate_style(model, args["performance"], args["performance"], 1.5)


@pytest.mark.parametrize("chunks", [(4, 3, 1, 5, 12), (1, 2, 22)])
def test_cache_accepts_chunks_of_any_size(chunks):
    model = tiny("melody+performance", "tile")
    x, perf, mel = torch.randint(2, 390, (2, 25)), torch.randint(2, 390, (2, 9)), torch.randint(4, 92, (2, 7))
    memory, padding = model.memory(perf, mel)
    cache: dict = {}
    bounds = torch.tensor((0, *chunks)).cumsum(0).tolist()
    out = torch.cat([model.decoder(x[:, a:b], memory, padding, cache) for a, b in zip(bounds, bounds[1:])], dim=1)
    torch.testing.assert_close(out, model(x, perf, mel), atol=1e-5, rtol=0)


BOS = 390


@pytest.mark.parametrize("favoured", [BOS, PAD])
@pytest.mark.parametrize("conditioning", ["none", "melody+performance"])
def test_no_pad_or_bos_after_the_primer_even_when_the_head_favours_them(favoured, conditioning):
    model = tiny(conditioning, "concat")
    with torch.no_grad():
        model.decoder.head.bias[favoured] = 30.0  # unmasked, nearly every sample would be this id
    primer = torch.tensor([BOS, 62, 300])
    kwargs = {} if conditioning == "none" else dict(performance=torch.randint(2, 390, (1, 9)),
                                                    melody=torch.randint(4, 92, (1, 7)))
    for top_k, top_p in ((0, 1.0), (1, 1.0), (0, 0.5)):
        out = generate(model, 4, max_length=24, primer=primer, eos=None, top_k=top_k, top_p=top_p, **kwargs)
        assert out.shape == (4, 24) and torch.equal(out[:, :3], primer.expand(4, -1))
        assert not torch.isin(out[:, 3:], torch.tensor([PAD, BOS])).any()


def test_nothing_but_pad_after_eos():
    # EOS is likely but not certain, so rows stop at different steps; after a row's first EOS only PAD
    model = tiny("none")
    with torch.no_grad():
        model.decoder.head.bias[EOS] = 5.0
        model.decoder.head.bias[BOS] = 30.0  # and BOS, favoured, is still never sampled
    out = generate(model, 16, max_length=30, seed=3)
    stops = []
    for row in out:
        hits = (row[1:] == EOS).nonzero()
        assert len(hits), "every row of this biased model stops"
        first = int(hits[0]) + 1
        stops.append(first)
        assert (row[first + 1:] == PAD).all() and not torch.isin(row[1:first + 1], torch.tensor([PAD, BOS])).any()
    assert len(set(stops)) > 1  # the rows did stop at different steps


@pytest.mark.parametrize("relative,absolute", [(True, False), (False, True)])
def test_kv_cache_is_exact_at_2048_tokens(relative, absolute):
    # the cached relative logits read the far end of the table at distance -(2047); tiny width keeps it fast
    torch.manual_seed(7)
    cfg = TransformerConfig(dim=8, heads=2, layers=1, ff=16, max_len=2048, dropout=0.0, relative=relative,
                            absolute=absolute)
    model = TransformerAutoencoder(cfg, "none").eval()
    x = torch.randint(2, 390, (1, 2048))
    with torch.no_grad():
        full = model(x)
        cache: dict = {}
        steps = [model.decoder(x[:, :1000], cache=cache)]
        steps += [model.decoder(x[:, t:t + 1], cache=cache) for t in range(1000, 2048)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-4, rtol=0)
    assert cache["length"] == 2048
