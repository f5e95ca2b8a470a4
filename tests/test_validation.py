"""etude.validation: the one int/number check behind the public functions' argument errors."""

import math

import numpy as np
import pytest

from etude.errors import BadInputError
from etude.validation import check_int, check_number


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 3.0, 2.5, "3", None, [3], np.float64(3.0)])
def test_check_int_refuses_what_is_not_an_int(value):
    with pytest.raises(BadInputError, match=r"^steps must be an int, got "):
        check_int("steps", value)


def test_check_int_bounds_are_inclusive_and_the_value_comes_back_as_an_int():
    assert check_int("n", 1, 1) == 1 and check_int("n", 4, 1, 4) == 4 and check_int("n", -7, high=-7) == -7
    assert type(check_int("n", np.int64(5), 1)) is int
    for value, low, high, expected in [(0, 1, None, "n must be an int >= 1, got 0 (int)"),
                                       (5, 1, 4, "n must be an int in [1, 4], got 5 (int)"),
                                       (0, 1, 4, "n must be an int in [1, 4], got 0 (int)"),
                                       (3, None, 2, "n must be an int <= 2, got 3 (int)"),
                                       (1.0, 1, None, "n must be an int >= 1, got 1.0 (float)")]:
        with pytest.raises(BadInputError) as info:
            check_int("n", value, low, high)
        assert str(info.value) == expected  # one line: the parameter, the range, the value and its type


def test_check_number_accepts_reals_and_refuses_bools_strings_and_nan():
    assert check_number("lr", 1) == 1.0 and type(check_number("lr", np.float32(0.5))) is float
    assert check_number("scale", math.inf, 0, low_open=True) == math.inf  # no upper bound: infinity passes
    for value in [True, "0.1", None, math.nan]:
        with pytest.raises(BadInputError, match=r"^lr must be a number"):
            check_number("lr", value)


def test_check_number_open_and_closed_bounds():
    assert check_number("alpha", 0, 0, 1) == 0.0 and check_number("alpha", 1, 0, 1) == 1.0
    cases = [(dict(low=0, low_open=True), 0, "alpha must be a number > 0, got 0 (int)"),
             (dict(low=1), 0.5, "alpha must be a number >= 1, got 0.5 (float)"),
             (dict(low=0, high=1, low_open=True, high_open=True), 1.0, "alpha must be a number in (0, 1), got 1.0 (float)"),
             (dict(low=0, high=1), -0.1, "alpha must be a number in [0, 1], got -0.1 (float)"),
             (dict(high=2, high_open=True), 2, "alpha must be a number < 2, got 2 (int)")]
    for bounds, value, expected in cases:
        with pytest.raises(BadInputError) as info:
            check_number("alpha", value, **bounds)
        assert str(info.value) == expected
