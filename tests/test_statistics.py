"""etude.statistics: the intervals every study's criteria use against closed forms and scipy, the permutation
p-value against enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats

from etude.errors import BadInputError
from etude.statistics import (
    difference_interval,
    interval_text,
    mean_half_width,
    paired_difference,
    paired_t_interval,
    permutation_pvalue,
)


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


def test_mean_interval_is_the_normal_interval():
    mean, half = mean_half_width(torch.tensor([1.0, 2.0, 3.0]))
    assert mean == pytest.approx(2.0) and half == pytest.approx(1.96 / 3**0.5)
    assert np.isnan(mean_half_width([4.0])[1])
    with pytest.raises(BadInputError):
        mean_half_width([])


def test_difference_interval_is_welch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 40), rng.normal(0, 2, 30)
    diff, half = difference_interval(a, b)
    se = stats.ttest_ind(a, b, equal_var=False)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert half == pytest.approx(1.96 * diff / se.statistic)
    assert np.isnan(difference_interval([1.0], [1.0, 2.0])[1])


def test_permutation_pvalue_matches_full_enumeration():
    labels = [0, 0, 0, 1, 1, 1]
    score = [5.0, 4.0, 3.5, 1.0, 2.0, 0.5]

    def stat(lab):
        lab = np.asarray(lab)
        return float(np.mean(np.asarray(score)[lab == 0]) - np.mean(np.asarray(score)[lab == 1]))

    observed = stat(labels)
    every = [stat(p) for p in itertools.permutations(labels)]
    exact = np.mean([v >= observed - 1e-12 for v in every])  # 1/20 of the distinct splits
    got, p = permutation_pvalue(stat, labels, permutations=4000, seed=1)
    assert got == observed and p == pytest.approx(exact, abs=0.015)
    _, p_noise = permutation_pvalue(lambda lab: 0.0, labels, permutations=99)  # a constant statistic
    assert p_noise == 1.0
    with pytest.raises(BadInputError):
        permutation_pvalue(stat, [0], permutations=10)
