"""etude.statistics: the paired-difference intervals every study's criteria use, against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from etude.statistics import interval_text, paired_difference, paired_t_interval


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_t_interval_is_scipys_t_interval(seed):
    d = np.random.default_rng(seed).normal(0.3, 1.0, 17)
    ci = paired_t_interval(np.append(d, np.nan))  # NaN pairs are dropped
    ref = stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert ci["n"] == 17 and ci["mean"] == pytest.approx(d.mean())
    assert (ci["low"], ci["high"]) == pytest.approx((ref.low, ref.high), rel=1e-10)
    assert np.isnan(paired_t_interval([1.0])["low"]) and paired_t_interval([])["n"] == 0


def test_paired_difference_is_the_normal_interval_of_a_minus_b():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([0.0, 1.0, 1.0])
    mean, low, high = paired_difference(a, b)
    se = np.std([1.0, 1.0, 3.0], ddof=1) / np.sqrt(3)
    assert (mean, low, high) == pytest.approx((5 / 3, 5 / 3 - 1.96 * se, 5 / 3 + 1.96 * se))


def test_interval_text():
    assert interval_text({"mean": 0.1234, "low": -0.01, "high": 0.25}) == "+0.123 [-0.010, +0.250]"
