"""The transformer_ae claims' decision rules: t intervals against scipy; noise, constants, untrained models fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from etude.music import (
    Performance,
    PerformanceEncoding,
    TransformerAutoencoder,
    TransformerConfig,
)
from etude.music.criteria import (
    IN_RANGE,
    MARGIN,
    MIN_PAIRS,
    better_rule,
    direction_rule,
    interval_rule,
    nll_gain,
    range_rule,
    style_nll_rule,
)
from etude.music.experiments import decide_nll_claims
from etude.music.generations import equal_span, training_pitch_range
from etude.music.generate import generate
from etude.music.metrics import mean_velocity, note_density, pitch_range_fraction
from etude.music.study import TransformerAeStudy
from etude.music.training import Crops, make_crops, nll, nll_per_crop
from etude.statistics import paired_t_interval as paired_interval


def test_interval_rule_on_noise_constants_and_too_few_pairs():
    x = np.random.default_rng(0).normal(0.0, 1.0, 10)
    noise = paired_interval(np.concatenate([x, -x]))  # mean exactly 0: the interval straddles 0
    assert interval_rule(noise) == (False, False)
    assert interval_rule(paired_interval(np.full(MIN_PAIRS, -0.5) + 0.01 * x[:1])) == (False, True)  # fails
    up = paired_interval(0.5 + 0.1 * np.concatenate([x, -x]))
    assert interval_rule(up) == (True, True)
    assert interval_rule(paired_interval(0.5 + 0.1 * x)) == (False, False)  # 10 < MIN_PAIRS pairs
    assert interval_rule(up, margin=1.0) == (False, True)  # clearly positive, but below the margin


def _gain(per_seed_mean, n=40, seeds=2, sd=0.01):
    rng = np.random.default_rng(0)
    worse = [np.full(n, 3.0) for _ in range(seeds)]
    better = [w - g - rng.normal(0, sd, n) for w, g in zip(worse, per_seed_mean)]
    return nll_gain(worse, better)


def test_style_nll_rule_needs_two_seeds_a_margin_and_every_seed():
    assert style_nll_rule(_gain([0.2, 0.2]), enough=True) == (True, True)
    assert style_nll_rule(_gain([0.2], seeds=1), enough=True) == (False, False)  # one seed decides nothing
    assert style_nll_rule(_gain([0.2, 0.2]), enough=False) == (False, False)
    assert style_nll_rule(_gain([MARGIN / 3, MARGIN / 3], sd=1e-4), enough=True) == (False, True)  # under the margin
    assert style_nll_rule(_gain([0.5, -0.01], sd=1e-4), enough=True) == (False, False)  # a seed disagrees
    assert better_rule(_gain([0.01], seeds=1, sd=1e-4), enough=True) == (False, False)  # 1 seed, gap < SMALL
    assert better_rule(_gain([-0.2], seeds=1), enough=True) == (False, True)


@pytest.fixture(scope="module")
def crops(bach):
    return make_crops(bach.pieces, seconds=1.5, max_tokens=32, per_piece=5, seed=0)


def test_untrained_models_do_not_pass_the_nll_rule(crops):
    per_crop = {}
    for name, cond in (("unconditional", "none"), ("performance", "performance")):
        per_crop[name] = []
        for s in range(2):
            torch.manual_seed(s)
            model = TransformerAutoencoder(TransformerConfig(dim=16, heads=2, layers=1, ff=32, max_len=32), cond,
                                           encoder_layers=1)
            per_crop[name].append(nll_per_crop(model, crops))
    holds, _ = style_nll_rule(nll_gain(per_crop["unconditional"], per_crop["performance"]), enough=True)
    assert not holds
    assert not better_rule(nll_gain(per_crop["unconditional"][:1], per_crop["performance"][:1]), enough=True)[0]
    assert better_rule(nll_gain(per_crop["performance"], per_crop["performance"]), enough=True) == (False, False)


def test_nll_per_crop_weights_to_nll(crops):
    torch.manual_seed(0)
    model = TransformerAutoencoder(TransformerConfig(dim=16, heads=2, layers=1, ff=32, max_len=32), "performance",
                                   encoder_layers=1)
    each = nll_per_crop(model, crops, batch_size=7)
    counts = (crops.performance != PerformanceEncoding.PAD).sum(1).numpy()
    assert np.sum(each * counts) / counts.sum() == pytest.approx(nll(model, crops), rel=1e-6)
    assert each[3] == pytest.approx(nll(model, crops.select(torch.tensor([3]))), rel=1e-6)


def test_direction_rule_on_noise_and_reversed_styles():
    x = np.random.default_rng(1).normal(0.0, 3.0, 8)
    noise = paired_interval(np.concatenate([x, -x]))
    up, down = paired_interval(5 + np.concatenate([x, -x])), paired_interval(-5 + np.concatenate([x, -x]))
    assert direction_rule(up, up) == (True, True)
    assert direction_rule(noise, noise) == (False, False)
    assert direction_rule(up, down) == (False, True)  # louder but sparser: fails
    assert direction_rule(up, noise) == (False, False)


def test_uniform_random_pitches_fail_the_pitch_range_claim():
    rng = np.random.default_rng(0)
    pitch = rng.integers(0, 128, 400)
    noise = Performance.from_arrays(pitch, np.full(400, 80), np.arange(400) * 0.1, np.arange(400) * 0.1 + 0.05)
    fraction = pitch_range_fraction([noise], 41, 77)
    assert fraction == pytest.approx(37 / 128, abs=0.06)
    assert range_rule(fraction, len(noise)) == (False, True)
    inside = Performance.from_arrays(np.full(60, 60), np.full(60, 80), np.arange(60) * 0.1, np.arange(60) * 0.1 + 0.05)
    assert range_rule(pitch_range_fraction([inside], 41, 77), 60) == (True, True)  # a constant in range passes
    assert range_rule(pitch_range_fraction([inside], 61, 77), 60) == (False, True)
    assert range_rule(1.0, 10) == (True, False)  # too few notes
    assert IN_RANGE == 0.95


def test_an_untrained_model_plays_outside_the_corpus_range(crops):
    low, high = training_pitch_range(crops)
    torch.manual_seed(0)
    model = TransformerAutoencoder(TransformerConfig(dim=16, heads=2, layers=1, ff=32, max_len=128), "none")
    out = generate(model, 8, max_length=128, seed=0, eos=None, show_progress=False)
    perfs = [PerformanceEncoding().decode(row[1:]) for row in out]
    fraction = pitch_range_fraction(perfs, low, high)
    assert sum(len(p) for p in perfs) >= 50 and not range_rule(fraction, 50)[0]


def test_training_pitch_range_reads_note_ons():
    enc = PerformanceEncoding()
    perf = Performance.from_arrays([40, 83, 60], [70, 70, 70], [0.0, 0.1, 0.2], [0.5, 0.6, 0.7])
    ids = torch.from_numpy(enc.encode(perf))
    data = Crops(torch.stack([ids, torch.zeros_like(ids)]), torch.zeros(2, 3, dtype=torch.long))
    assert training_pitch_range(data) == (40, 83)


def test_feature_helpers():
    perf = Performance.from_arrays([60, 64, 67], [30, 60, 90], [0.0, 0.5, 1.0], [0.4, 0.9, 2.0])
    assert mean_velocity(perf) == 60 and note_density(perf) == pytest.approx(1.5)
    assert np.isnan(mean_velocity(Performance())) and np.isnan(pitch_range_fraction([], 0, 127))


def test_equal_span_crops_both_styles_to_one_span_within_the_budget(bach):
    enc = PerformanceEncoding()
    fast = bach.pieces[0].performance
    slow = fast.stretch(2.0)
    spans, span = equal_span({"fast": fast, "slow": slow}, 8.0, 40)
    assert all(len(enc.encode(p)) <= 40 for p in spans.values())
    assert all(p.start.max() < span for p in spans.values()) and span < 8.0
    bigger, _ = equal_span({"fast": fast}, span / 0.8, 10_000)  # one step less shrinking does not fit
    assert len(enc.encode(bigger["fast"])) > 40


def test_quick_leaves_copying_undecided_and_long_decides_it():
    study = TransformerAeStudy()
    per_crop = {n: [np.full(40, 2.0)] for n in ("unconditional", "performance", "melody", "melody+perf sum",
                                              "melody+perf concat", "melody+perf tile", "absolute")}
    per_crop["unpooled"] = [np.full(40, 0.5)]
    verdicts = {}
    for preset in ("quick", "long"):
        claims = {c.id: c for c in study.claims()}
        decide_nll_claims(claims, per_crop, study.presets[preset], enough=True)
        verdicts[preset] = claims["unpooled_copies"].verdict
    assert verdicts == {"quick": "inconclusive", "long": "holds"}
    per_crop["unpooled"] = per_crop["performance"]  # a model that does not copy fails in long
    claims = {c.id: c for c in study.claims()}
    decide_nll_claims(claims, per_crop, study.presets["long"], enough=True)
    assert claims["unpooled_copies"].verdict == "fails"
    assert claims["style_lowers_nll"].verdict == "inconclusive"  # one seed
    long = study.presets["long"]
    # every model an NLL claim compares gets two seeds (empty seed_models: all); 64 direction scores, 16 pairs
    assert long.seeds == 2 and long.samples >= MIN_PAIRS and long.seed_models == ()
    assert long.direction_scores >= 64 and long.transfer_pairs >= MIN_PAIRS and long.pieces == 0
