"""Every preset field is checked with its meaning when --set parses (etude.studies.fields).

A property test feeds every field of every study's preset hostile values (0, negative, subnormal,
huge, NaN, infinite, strings, lists, nesting) and requires a one-line refusal or a value within the
field's rule; the values that pass for a real study are run end to end by the hostile pass
(reported in issue 29's note) and, for the fake study, here.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etude.cli import main
from etude.errors import BadInputError
from etude.studies import get_study, study_names
from etude.studies.fields import FLOAT_GROWTH, FRACTION_MARGIN, field_rules, rule_metadata
from etude.studies.protocol import override_limits

HOSTILE = ["0", "-1", "5e-324", "-5e-324", "1e-300", "1e300", "-1e300", "nan", "inf", "-inf", "abc", "", "[1, 2]", "[]"]
HOSTILE += ['["x"]', "[[1]]", "[0]", "[-1]", "[1e300]", '{"a": 1}', "1" * 41, "0x10", "true", "1.5"]

_STUDIES = {name: get_study(name) for name in study_names()}
_FIELDS = [(name, f.name) for name in study_names() for f in dataclasses.fields(get_study(name).presets["smoke"])]


def _texts() -> st.SearchStrategy[str]:
    numbers = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
        st.integers(-(2**70), 2**70),
    )
    return st.one_of(
        st.sampled_from(HOSTILE),
        numbers.map(repr),
        st.lists(numbers, max_size=4).map(lambda xs: "[" + ", ".join(map(repr, xs)) + "]"),
        st.text(max_size=12),
    )


def _within(rule, value) -> bool:
    items = value if isinstance(value, (tuple, list)) else [value]
    for item in items:
        if isinstance(item, bool) or isinstance(item, str):
            continue
        if isinstance(item, float) and (not math.isfinite(item) or 0 < abs(item) < 2.2250738585072014e-308):
            return False
        if rule.low is not None and (item < rule.low or (rule.low_open and item == rule.low)):
            return False
        if rule.high is not None and (item > rule.high or (rule.high_open and item == rule.high)):
            return False
    return True


@pytest.mark.parametrize(("study_name", "field"), _FIELDS)
@settings(max_examples=12, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts())
def test_every_field_refuses_hostile_values_in_one_line_or_keeps_its_meaning(study_name, field, text) -> None:
    study = _STUDIES[study_name]
    rule = override_limits(study.presets.values())[field]
    try:
        preset = study.preset("smoke", {field: text})
    except BadInputError as exc:
        message = str(exc)
        assert "\n" not in message and field in message, message
        return
    value = getattr(preset, field)
    assert type(value) is type(getattr(study.presets["smoke"], field))
    assert _within(rule, value), (field, text, value, rule.describe())


@pytest.mark.parametrize("study_name", study_names())
def test_every_preset_of_every_study_follows_its_own_rules(study_name) -> None:
    study = get_study(study_name)
    rules = field_rules(study.presets.values())
    for preset in study.presets.values():
        for f in dataclasses.fields(preset):
            assert rules[f.name].check(getattr(preset, f.name)) == getattr(preset, f.name)


def test_the_reported_overrides_are_refused_with_their_meaning() -> None:
    """bruno lr=-1 / 1e300 / 0, steps=0, weight_decay=-1, blocks=0 and pwcca test_fraction=5e-324 ran or crashed."""
    cases = {
        ("bruno", "lr", "-1"): "a learning rate in [1e-06, 1]",
        ("bruno", "lr", "1e300"): "a learning rate",
        ("bruno", "lr", "0"): "a learning rate",
        ("bruno", "steps", "0"): "a size or count in [1, ",
        ("bruno", "weight_decay", "-1"): "a non-negative number (0: none) in [0, 10]",
        ("bruno", "blocks", "0"): "a size or count",
        ("pwcca", "test_fraction", "5e-324"): "subnormal",
        ("pwcca", "test_fraction", "1e-300"): f"a fraction in [{FRACTION_MARGIN:g}, 0.999]",
        ("pwcca", "test_fraction", "1"): "a fraction",
        ("transformer_ae", "dropout", "1"): "a fraction in [0, 0.999]",
        ("qmcvi", "sizes", "[]"): "at least one item",
        ("qmcvi", "sizes", '["a"]'): "expects ints",
        ("metavae", "rotations", "[1.5]"): "expects ints",
    }
    for (name, field, text), words in cases.items():
        with pytest.raises(BadInputError) as refused:
            get_study(name).preset("smoke", {field: text})
        assert words in str(refused.value), (name, field, text, str(refused.value))


def test_float_scale_is_bounded_both_ways() -> None:
    rule = field_rules(get_study("bruno").presets.values())["lr"]
    assert rule.low == pytest.approx(0.001 / FLOAT_GROWTH) and rule.high == pytest.approx(0.001 * FLOAT_GROWTH)


def test_a_field_that_uses_zero_in_a_preset_keeps_zero() -> None:
    assert get_study("amae").preset("smoke", {"ablation_steps": "0"}).ablation_steps == 0
    assert get_study("transformer_ae").preset("smoke", {"dropout": "0"}).dropout == 0.0


def test_metadata_overrides_the_conventions() -> None:
    @dataclasses.dataclass(frozen=True)
    class P:
        steps: int = dataclasses.field(default=5, metadata={"etude": {"low": 0, "meaning": "steps (0: untrained)"}})

    rules = field_rules([P()])
    assert rules["steps"].check(0) == 0
    with pytest.raises(BadInputError, match=r"steps \(0: untrained\) in \[0, 50\]"):
        rules["steps"].check(-1)


ZERO_MEANS_NONE = {
    # 0 is a meaningful value of these, though every preset holds them positive
    ("bruno", "weight_decay"): 0.0,  # plain Adam (name convention)
    ("bruno", "warmup"): 0,  # the process learns from step 0 (name convention)
    ("bruno", "process_scale"): 0.0,  # the process stays at its initial values (metadata)
    ("amae", "diversity"): 0.0,  # no diversity loss: bottlenecks.ArgmaxQuantizer's "0 disables it" (metadata)
    ("amae", "restart_threshold"): 0.0,  # no code restarts (metadata)
    ("amae", "final_lr"): 0.0,  # linear decay to 0 (metadata)
}
STILL_NEEDS_ONE = [("bruno", f) for f in ("steps", "blocks", "layers", "hidden", "batch", "seq_len", "eval_every")]
STILL_NEEDS_ONE += [("amae", f) for f in ("steps", "codes", "layers", "batch", "checkpoint_every")]
STILL_NEEDS_ONE += [("transformer_ae", f) for f in ("steps", "layers", "dim", "heads")]


@pytest.mark.parametrize(("study_name", "field"), sorted(ZERO_MEANS_NONE))
def test_zero_is_allowed_where_it_means_none(study_name, field) -> None:
    """`bruno --set weight_decay=0` and `warmup=0` were refused since every preset holds them positive."""
    value = getattr(get_study(study_name).preset("smoke", {field: "0"}), field)
    assert value == ZERO_MEANS_NONE[(study_name, field)] and type(value) is type(ZERO_MEANS_NONE[(study_name, field)])
    with pytest.raises(BadInputError, match=field):
        get_study(study_name).preset("smoke", {field: "-1"})


@pytest.mark.parametrize(("study_name", "field"), STILL_NEEDS_ONE)
def test_zero_is_still_refused_where_training_or_structure_needs_one(study_name, field) -> None:
    with pytest.raises(BadInputError, match=rf"{field}.*a size or count in \[1, "):
        get_study(study_name).preset("smoke", {field: "0"})


@pytest.mark.parametrize("study_name", ["bruno", "amae", "transformer_ae", "pwcca", "metavae", "qmcvi", "lola"])
def test_learning_rates_stay_positive(study_name) -> None:
    with pytest.raises(BadInputError, match="a learning rate"):
        get_study(study_name).preset("smoke", {"lr": "0"})


def test_the_name_convention_keeps_zero_for_regularisers_only() -> None:
    @dataclasses.dataclass(frozen=True)
    class P:
        weight_decay: float = 0.1
        jitter: float = 1e-6
        warmup_steps: int = 10
        decay: float = 0.1
        steps: int = 10

    rules = field_rules([P(), P(weight_decay=0.3, warmup_steps=20)])
    assert rules["weight_decay"].check(0) == 0.0 and rules["jitter"].check(0) == 0.0
    assert rules["warmup_steps"].check(0) == 0
    for name in ("weight_decay", "jitter", "warmup_steps"):
        with pytest.raises(BadInputError, match=r"\(0: none\) in \[0, "):
            rules[name].check(-1)
    for name in ("decay", "steps"):  # no regulariser named: the presets' positivity holds
        with pytest.raises(BadInputError):
            rules[name].check(0)


def test_choices_and_min_items_are_checked_at_parse_time() -> None:
    """`metavae --set rotations=[-1]` ran a while, then failed in split_values; a flow or split style
    outside the study's ones failed late too."""
    bruno, metavae = get_study("bruno"), get_study("metavae")
    cases = {
        (bruno, "flow", "glow"): "must be one of ['realnvp', 'dense', 'none'], got 'glow'",
        (metavae, "rotation_style", "random"): "must be one of ['interleaved', 'sparse', 'contiguous']",
        (metavae, "rotations", "[-1]"): "'rotations' must hold at least 4 items, got 1",
        (metavae, "rotations", "[0, 90, 180]"): "at least 4 items",
        (metavae, "rotations", "[]"): "at least one item",
        (metavae, "scales", "[1.0]"): "'scales' must hold at least 4 items (or none), got 1",
    }
    for (study, field, text), words in cases.items():
        with pytest.raises(BadInputError) as refused:
            study.preset("smoke", {field: text})
        assert words in str(refused.value), (field, text, str(refused.value))
    assert bruno.preset("smoke", {"flow": "dense"}).flow == "dense"
    assert metavae.preset("smoke", {"rotation_style": "sparse"}).rotation_style == "sparse"
    assert metavae.preset("smoke", {"rotations": "[0, 90, 180, 270]"}).rotations == (0, 90, 180, 270)
    assert metavae.preset("smoke", {"scales": "[]"}).scales == ()


def test_rule_metadata_refuses_unknown_keys() -> None:
    with pytest.raises(TypeError, match="minimum"):
        rule_metadata(minimum=1)

    @dataclasses.dataclass(frozen=True)
    class P:
        steps: int = dataclasses.field(default=5, metadata={"etude": {"minimum": 1}})

    with pytest.raises(TypeError, match="minimum"):
        field_rules([P()])


@settings(max_examples=30, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["steps", "lr", "flag", "label"]), text=_texts())
def test_the_cli_refuses_in_one_line_or_the_study_completes(fake, tmp_path, capsys, field, text) -> None:
    """End to end on the fake study: exit 2 with one line, or exit 0 and a finished result; never a crash."""
    out = tmp_path / f"run-{abs(hash((field, text)))}"
    status = main(["reproduce", "fake_good", "--preset", "smoke", "--set", f"{field}={text}", "--out", str(out)])
    captured = capsys.readouterr()
    assert status in (0, 2), (field, text, status, captured.err)
    if status == 2:
        assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    else:
        assert "CRASHED" not in captured.out
