"""The meaning of each preset field, inferred from the study's presets, checked when ``--set`` parses.

A study declares its presets as dataclasses; a field's rule is read from its name, its values over
the study's presets and, where a study wants to be explicit, the field's metadata, which wins
(``field(default=0.01, metadata=rule_metadata(low=0))``: keys ``low``, ``high``, ``low_open``, ``high_open``,
``meaning``, ``choices`` (the allowed values of a string, or of each item of a list) and ``min_items``
(the fewest items a non-empty list may hold)). Every number given on
the command line is checked at parse time, so a bad value is a one-line refusal (exit 2) before
anything runs, never a crashed study or a verdict from a model that did not train:

- **finite and representable**: no NaN or infinity; no subnormal float (``0 < |x| < 2.2e-308``),
  whose products underflow to 0.
- **learning rates** (``lr``, ``*_lr``, ``learning_rates``): > 0, like every float positive in every preset.
- **fractions** (a name holding ``fraction``, and ``dropout``, ``top_p``, ``ema``): inside the open
  interval (0, 1), at least ``FRACTION_MARGIN`` from an excluded end; an end that a preset uses
  (``dropout = 0``) is allowed.
- **off at zero** (a name holding ``weight_decay``, ``warmup``, ``dropout``, ``jitter`` or
  ``label_smoothing``): a regulariser or a schedule length whose 0 means "none" keeps 0 allowed
  even where every preset is positive (``weight_decay = 0``: plain Adam; ``warmup = 0``: no warm-up).
- **counts and sizes**: a number positive in every preset (``steps``, ``blocks``, ``hidden``,
  ``batch``, a learning rate) must stay positive, so an int must be >= 1; one that is
  non-negative in every preset must stay non-negative. A preset that uses 0 (``ablation_steps = 0``
  skips the ablation) keeps 0 allowed.
- **scale**: an int may be at most ``OVERRIDE_GROWTH`` x the largest magnitude over the presets
  (at least 16), a float at most ``FLOAT_GROWTH`` x; a float positive in every preset at least the
  smallest preset value / ``FLOAT_GROWTH`` (``lr = 1e-300`` trains nothing); a field negative in some
  preset gets the mirrored lower bound.
- **tuples**: each item follows the rule of the items the presets hold, items have the presets'
  item type, a tuple non-empty in every preset stays non-empty, and its length is bounded like an int.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from etude.errors import BadInputError

__all__ = [
    "FLOAT_GROWTH",
    "FRACTION_MARGIN",
    "OFF_AT_ZERO",
    "OVERRIDE_GROWTH",
    "FieldRule",
    "field_rules",
    "rule_metadata",
]

OVERRIDE_GROWTH = 10
"""An int field may be at most this many times the largest value of the field over the study's presets."""
FLOAT_GROWTH = 1000
"""A float field may be at most this many times the largest magnitude of the field over the presets."""
FRACTION_MARGIN = 1e-3
"""The closest a fraction may come to an end of (0, 1) that no preset uses."""
_FRACTIONS = ("dropout", "top_p", "ema")
OFF_AT_ZERO = ("weight_decay", "warmup", "dropout", "jitter", "label_smoothing")
"""Name parts of the fields whose 0 means "none" (a regulariser or a warm-up), allowed whatever the presets hold."""
_KEYS = ("low", "high", "low_open", "high_open", "meaning", "choices", "min_items")


def rule_metadata(**rule: Any) -> dict[str, Any]:
    """A preset field's metadata stating its rule where its name and presets get it wrong, e.g.
    ``field(default=0.1, metadata=rule_metadata(low=0))``; keys as in the module docstring."""
    unknown = set(rule) - set(_KEYS)
    if unknown:
        raise TypeError(f"unknown field rule keys {sorted(unknown)}; expected some of {list(_KEYS)}")
    if "choices" in rule:
        rule["choices"] = tuple(rule["choices"])
    return {"etude": rule}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_learning_rate(name: str) -> bool:
    return name == "lr" or name.endswith("_lr") or name.startswith("learning_rate")


@dataclass(frozen=True)
class FieldRule:
    """What values one preset field accepts (see the module docstring)."""

    name: str
    kind: type
    """The type of the field (bool, int, float, str, tuple or list)."""
    item: type | None
    """For a tuple or list field: the type of its items (None when every preset holds it empty)."""
    low: float | None
    high: float | None
    low_open: bool = False
    high_open: bool = False
    nonempty: bool = False
    max_items: int = 0
    meaning: str = ""
    choices: tuple = ()
    """The allowed values of a string field or of each item of a list field (empty: any)."""
    min_items: int = 0
    """The fewest items a non-empty list may hold (an empty one is refused only when ``nonempty``)."""

    def check(self, value: Any) -> Any:
        """``value`` (converted to the field's types: an int item of a float field becomes a float) if it
        fits the rule; else BadInputError naming the field and what it accepts."""
        if self.kind in (tuple, list):
            if not isinstance(value, (tuple, list)):
                raise BadInputError(f"preset field {self.name!r} expects a list, got {value!r}")
            if len(value) > self.max_items:
                raise BadInputError(
                    f"preset field {self.name!r} may hold at most {self.max_items} items, got {len(value)}"
                )
            if self.nonempty and not value:
                raise BadInputError(f"preset field {self.name!r} must hold at least one item")
            items = self.kind(self._scalar(item, self.item) for item in value)
            if items and len(items) < self.min_items:
                raise BadInputError(
                    f"preset field {self.name!r} must hold at least {self.min_items} items"
                    f"{'' if self.nonempty else ' (or none)'}, got {len(items)}"
                )
            return items
        return self._scalar(value, self.kind)

    def _scalar(self, value: Any, kind: type | None) -> Any:
        if kind is None:
            raise BadInputError(f"preset field {self.name!r} must stay empty, got {value!r}")
        if kind is bool or kind is str:
            if type(value) is not kind:
                raise BadInputError(f"preset field {self.name!r} expects {kind.__name__} items, got {value!r}")
            self._choose(value)
            return value
        if kind is int and not _is_int(value):
            raise BadInputError(f"preset field {self.name!r} expects ints, got {value!r}")
        if kind is float:
            if not (_is_int(value) or isinstance(value, float)):
                raise BadInputError(f"preset field {self.name!r} expects numbers, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise BadInputError(f"preset field {self.name!r} must be finite, got {value!r}")
            if value != 0 and abs(value) < sys.float_info.min:
                raise BadInputError(
                    f"preset field {self.name!r} must be 0 or a normal float, got {value!r} (subnormal)"
                )
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        if not (above and below):
            raise BadInputError(f"preset field {self.name!r} must be {self.describe()}, got {value!r}")
        self._choose(value)
        return value

    def _choose(self, value: Any) -> None:
        if self.choices and value not in self.choices:
            raise BadInputError(f"preset field {self.name!r} must be one of {list(self.choices)}, got {value!r}")

    def describe(self) -> str:
        """The accepted range in words, e.g. 'a learning rate in (0, 10]'."""
        if self.choices:
            return f"one of {list(self.choices)}"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        interval = f"{'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        return f"{self.meaning} in {interval}" if self.meaning else f"in {interval}"


def _numbers(value: Any) -> list[float]:
    items = value if isinstance(value, (tuple, list)) else [value]
    return [float(v) for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _rule(f: dataclasses.Field, values: list[Any]) -> FieldRule:
    """The rule of field ``f`` from its values over the presets (and its metadata, which wins)."""
    kind, item, numeric = _kinds(values)
    numbers = [x for value in values for x in _numbers(value)]
    low: float | None = None
    high: float | None = None
    low_open = high_open = False
    meaning = ""
    if numeric and numbers:
        low, high, low_open, high_open, meaning = _bounds(f.name, numbers, integral=kind is int or item is int)
    lengths = [len(v) for v in values if isinstance(v, (tuple, list))]
    meta = dict(f.metadata.get("etude", {})) if f.metadata else {}
    unknown = set(meta) - set(_KEYS)
    if unknown:
        raise TypeError(f"preset field {f.name!r} has unknown rule keys {sorted(unknown)}")
    return FieldRule(
        name=f.name,
        kind=kind,
        item=item,
        low=meta.get("low", low),
        high=meta.get("high", high),
        low_open=meta.get("low_open", low_open),
        high_open=meta.get("high_open", high_open),
        nonempty=bool(lengths) and min(lengths) > 0,
        max_items=max([16, *(OVERRIDE_GROWTH * n for n in lengths)]),
        meaning=meta.get("meaning", meaning),
        choices=tuple(meta.get("choices", ())),
        min_items=int(meta.get("min_items", 0)),
    )


def _kinds(values: list[Any]) -> tuple[type, type | None, bool]:
    """The field's type, its items' type (a tuple or list; None if mixed), and whether it holds numbers.

    Items mixing int and float are floats.
    """
    first = values[0]
    kind: type = type(first)
    item: type | None = None
    if isinstance(first, (tuple, list)):
        items = [v for value in values for v in value]
        types = {float if type(v) is int and any(type(w) is float for w in items) else type(v) for v in items}
        item = types.pop() if len(types) == 1 else (float if types <= {int, float} else None)
        numeric = item in (int, float)
    else:
        numeric = kind in (int, float)
    return kind, item, numeric


def _bounds(name: str, numbers: list[float], *, integral: bool) -> tuple[float, float, bool, bool, str]:
    """``(low, high, low_open, high_open, meaning)`` of a numeric field from the presets' ``numbers``.

    The sign of the numbers picks the lower bound; the upper one is ``OVERRIDE_GROWTH`` (integers) or
    ``FLOAT_GROWTH`` (floats) times the largest; the field's name refines it (learning rate, fraction, off at zero).
    """
    low: float
    low_open = high_open = False
    largest = max(abs(x) for x in numbers)
    high = float(max(16, OVERRIDE_GROWTH * largest)) if integral else FLOAT_GROWTH * largest or 1.0
    if min(numbers) < 0:
        low, meaning = -high, "a number"
    elif min(numbers) > 0:
        low, low_open, meaning = 0.0, True, ("a size or count" if integral else "a positive number")
    else:
        low, meaning = 0.0, "a non-negative number"
    if integral:
        high = float(int(high))
        if low_open:
            low, low_open = 1.0, False
    if low_open and not integral:  # a positive float: within FLOAT_GROWTH of the presets' scale both ways
        low, low_open = min(numbers) / FLOAT_GROWTH, False
    if _is_learning_rate(name) and not integral:
        meaning = "a learning rate"
    if "fraction" in name or name in _FRACTIONS:
        meaning = "a fraction"
        low, low_open = (0.0, False) if min(numbers) == 0 else (FRACTION_MARGIN, False)
        high, high_open = (1.0, False) if max(numbers) == 1 else (1 - FRACTION_MARGIN, False)
    if any(part in name for part in OFF_AT_ZERO) and low > 0:
        low, low_open = 0.0, False
        plain = "a count" if integral else "a non-negative number"
        meaning = f"{'a fraction' if meaning == 'a fraction' else plain} (0: none)"
    return low, high, low_open, high_open, meaning


def field_rules(presets: Iterable[Any]) -> dict[str, FieldRule]:
    """Field name -> its rule, from a study's presets (instances of one dataclass)."""
    presets = list(presets)
    if not presets:
        return {}
    return {f.name: _rule(f, [getattr(p, f.name) for p in presets]) for f in dataclasses.fields(presets[0])}
