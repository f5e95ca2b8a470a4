"""Checks of scalar arguments at the public boundary: one message format for every int and number.

``check_int("steps", steps, 1)`` returns ``steps`` as an int or raises ``BadInputError`` with one
line that names the parameter, the range and the value received ("steps must be an int >= 1,
got 2.5 (float)"). Bounds are inclusive for ints; a bool is never an int and a float never one either,
even 3.0. ``check_number`` does the same for reals (ints and floats, not bools, never NaN), with
open or closed bounds.
"""

from __future__ import annotations

import math
import numbers

from etude.errors import BadInputError

__all__ = ["check_int", "check_number"]


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (a None bound is open-ended); else BadInputError naming ``name``.

    Python and NumPy integers pass; bools, floats (even integral ones) and strings do not.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
        if (low is None or number >= low) and (high is None or number <= high):
            return number
    raise BadInputError(f"{name} must be {_int_range(low, high)}, got {value!r} ({type(value).__name__})")


def check_number(
    name: str,
    value: object,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float within the bounds (closed unless ``low_open``/``high_open``); else BadInputError.

    Python and NumPy ints and floats pass; bools, strings and NaN do not. Infinity passes unless a
    bound excludes it.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        above = low is None or (number > low if low_open else number >= low)
        below = high is None or (number < high if high_open else number <= high)
        if not math.isnan(number) and above and below:
            return number
    raise BadInputError(
        f"{name} must be {_number_range(low, high, low_open, high_open)}, got {value!r} ({type(value).__name__})"
    )


def _int_range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an int in [{low}, {high}]"
    if low is not None:
        return f"an int >= {low}"
    return "an int" if high is None else f"an int <= {high}"


def _number_range(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a number {'<' if high_open else '<='} {high:g}"
    return "a number"
