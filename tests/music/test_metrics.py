"""OA similarity (closed form against numerical integration), window features, sanity metrics, plot."""

from __future__ import annotations

import math

import numpy as np
import pytest

from etude.errors import BadInputError
from etude.music import (
    FEATURES,
    Performance,
    empty_beat_rate,
    gaussian_overlap,
    oa_similarity,
    pitch_class_entropy,
    plot_piano_roll,
    polyphony,
    sanity_metrics,
    window_features,
)


def _numerical_overlap(m1, s1, m2, s2):
    low, high = min(m1 - 14 * s1, m2 - 14 * s2), max(m1 + 14 * s1, m2 + 14 * s2)
    x = np.linspace(low, high, 400001)
    pdf = lambda m, s: np.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    y = np.minimum(pdf(m1, s1), pdf(m2, s2))
    return float(((y[1:] + y[:-1]) / 2 * np.diff(x)).sum())  # the trapezoid rule


@pytest.mark.parametrize("seed", range(6))
def test_gaussian_overlap_equals_numerical_integration(seed):
    rng = np.random.default_rng(seed)
    m1, m2 = rng.normal(0, 3, 2)
    s1, s2 = rng.uniform(0.2, 4, 2)
    exact = gaussian_overlap(m1, s1, m2, s2)
    assert exact == pytest.approx(_numerical_overlap(m1, s1, m2, s2), abs=1e-6)
    assert exact == pytest.approx(gaussian_overlap(m2, s2, m1, s1), abs=1e-12)


@pytest.mark.parametrize(
    "m1, s1, m2, s2",
    [(0.0, 1.0, 1.0, 1.0), (0.0, 1.0, 1.0, 1.0 + 1e-7), (0.0, 1.0, 0.0, 3.0), (5.0, 0.01, 5.0, 0.01),
     (0.0, 1.0, 2.0, 0.5)],
)
def test_gaussian_overlap_special_cases(m1, s1, m2, s2):
    assert gaussian_overlap(m1, s1, m2, s2) == pytest.approx(_numerical_overlap(m1, s1, m2, s2), abs=1e-6)


def test_gaussian_overlap_closed_forms():
    assert gaussian_overlap(1.0, 2.0, 1.0, 2.0) == 1.0
    # equal stds: 2 Phi(-|d| / 2s); d = 2s gives 2 Phi(-1)
    assert gaussian_overlap(0.0, 1.5, 3.0, 1.5) == pytest.approx(math.erfc(1 / math.sqrt(2)), abs=1e-12)
    assert gaussian_overlap(0.0, 1.0, 40.0, 1.0) < 1e-80
    with pytest.raises(BadInputError, match="stds > 0"):
        gaussian_overlap(0.0, 0.0, 1.0, 1.0)


def _spread(seed: int, pitches, velocities, length, gap, n=80) -> Performance:
    rng = np.random.default_rng(seed)
    start = np.cumsum(rng.uniform(0.5, 1.5, n) * gap)
    return Performance.from_arrays(rng.integers(*pitches, n), rng.integers(*velocities, n), start,
                                   start + rng.uniform(0.8, 1.2, n) * length)


def test_oa_with_itself_is_one_and_disjoint_is_near_zero(bach):
    for piece in bach.pieces:
        assert oa_similarity(piece.performance, piece.performance) == pytest.approx(1.0, abs=1e-12)
    # low, quiet, short, sparse and narrow against high, loud, long, dense and wide
    quiet = _spread(0, (30, 33), (20, 23), length=0.1, gap=0.6)
    loud = _spread(1, (55, 100), (60, 128), length=1.5, gap=0.12)
    result = oa_similarity(quiet, loud, per_feature=True)
    assert 0.0 <= result["oa"] < 0.01 and set(result) == {"oa", *FEATURES}
    assert oa_similarity(quiet, _spread(2, (30, 33), (20, 23), length=0.1, gap=0.6)) > 0.8


def test_zero_variance_features_are_guarded():
    flat = Performance([(60, 80, 0.5 * i, 0.5 * i + 0.25) for i in range(20)])
    assert oa_similarity(flat, flat) == 1.0
    octave = oa_similarity(flat, flat.transpose(12), per_feature=True)
    assert octave["pitch_mean"] < 1e-9 and octave["pitch_variance"] == 1.0 and octave["velocity_mean"] == 1.0
    assert octave["oa"] == pytest.approx(7 / 8, abs=1e-6)
    # durations 1 ps apart are the same music: the std floor keeps two near-constants overlapping
    nudged = Performance([(60, 80, 0.5 * i, 0.5 * i + 0.25 + 1e-12) for i in range(20)])
    assert oa_similarity(flat, nudged) > 0.999


def test_window_features_by_hand():
    perf = Performance([(60, 80, 0.0, 0.5), (64, 100, 0.5, 1.5), (67, 60, 1.5, 1.75)])
    features = window_features(perf, window=2.0, hop=1.0)
    p, v, d = np.array([60, 64, 67.0]), np.array([80, 100, 60.0]), np.array([0.5, 1.0, 0.25])
    first = [1.5, 7, p.mean(), p.var(), v.mean(), v.var(), d.mean(), d.var()]
    assert features.shape == (2, 8)
    assert np.allclose(features[0], first) and np.allclose(features[1], [0.5, 0, 67, 0, 60, 0, 0.25, 0])
    with pytest.raises(BadInputError, match="performance a has no notes"):
        oa_similarity(Performance(), perf)


def test_sanity_metrics_by_hand():
    assert pitch_class_entropy(Performance([(60 + k, 80, 0.0, 1.0) for k in range(12)])) == pytest.approx(math.log2(12))
    assert pitch_class_entropy(Performance([(60, 80, 0.0, 1.0), (72, 80, 1.0, 2.0)])) == 0.0
    assert pitch_class_entropy(Performance([(60, 80, 0.0, 1.0), (61, 80, 1.0, 2.0)])) == pytest.approx(1.0)
    assert polyphony(Performance([(60, 80, 0.0, 2.0), (64, 80, 1.0, 3.0), (67, 80, 5.0, 6.0)])) == pytest.approx(1.25)
    assert empty_beat_rate(Performance([(60, 80, 0.0, 0.5), (62, 80, 1.5, 2.0)]), beat=0.5) == pytest.approx(0.5)
    assert empty_beat_rate(Performance()) == 1.0 and polyphony(Performance()) == 0.0


def test_chorales_have_chorale_statistics(bach):
    for piece in bach.pieces:
        stats = sanity_metrics(piece.performance)
        assert 2.5 < stats["polyphony"] < 5.0  # four voices, detached articulation
        assert 2.0 < stats["pitch_class_entropy"] < math.log2(12)
        assert stats["empty_beat_rate"] < 0.15


def test_piano_roll_writes_a_png(bach, tmp_path):
    piece = bach.pieces[0]
    fig = plot_piano_roll(piece.performance, tmp_path / "plots" / "roll.png", melody=piece.melody, title="x")
    data = (tmp_path / "plots" / "roll.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert fig.axes[0].get_title() == "x"
    with pytest.raises(BadInputError, match="performance must be a Performance"):
        plot_piano_roll([1, 2], tmp_path / "bad.png")
