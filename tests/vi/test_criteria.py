"""The qmcvi study's variance and schedule criteria (etude.vi.criteria) fail on noise and constants."""

import numpy as np

from etude.vi import criteria

SIZES = (4, 16, 64, 256)
DIMS = {"linear": 11, "logistic": 31, "bnn": 601}


def _variance(ratio):
    return {m: {p: {"ratio": list(ratio(m)), "log_se": [0.05] * len(SIZES)} for p in ("init", "trained")} for m in DIMS}


def test_variance_criteria_fail_when_rqmc_equals_mc():
    reduction, growth, figures = criteria.variance(_variance(lambda m: [1.0] * 4), DIMS, SIZES, 100)
    assert not reduction["holds"] and not growth["holds"] and reduction["conclusive"]
    assert "Not significantly above 1" in reduction["note"] and "| linear | 11 |" in figures["variance_table"]
    noise = np.random.default_rng(0)  # ratios scattered around 1: neither claim
    reduction, growth, _ = criteria.variance(_variance(lambda m: noise.uniform(0.8, 1.25, 4)), DIMS, SIZES, 100)
    assert not reduction["holds"] and not growth["holds"]


def test_variance_criteria_hold_on_ratios_growing_as_n():
    reduction, growth, figures = criteria.variance(
        _variance(lambda m: [n / (1 if m != "bnn" else 2) for n in SIZES]), DIMS, SIZES, 100
    )
    assert reduction["holds"] and growth["holds"]
    assert abs(figures["ratio_slopes_init"]["linear"] - 1.0) < 1e-9
    assert not criteria.variance(_variance(lambda m: [n for n in SIZES]), DIMS, SIZES, 10)[0]["conclusive"]


def test_growing_n_fails_on_equal_rates_and_on_a_constant():
    stages = [2, 4, 8, 16, 32, 64, 128]
    same = [1.0 / n for n in stages]
    assert not criteria.growing_n(stages, same, same, 8)[0]["holds"]  # both N^-1
    flat = [0.1] * len(stages)
    assert not criteria.growing_n(stages, same, flat, 8)[0]["holds"]
    decision, slopes = criteria.growing_n(stages, same, [1.0 / n**2 for n in stages], 8)
    assert decision["holds"] and decision["conclusive"] and abs(slopes["schedule_slope_rqmc"] + 2) < 1e-9
