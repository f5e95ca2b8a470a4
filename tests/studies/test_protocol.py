"""The study protocol: claim verdicts, result.json round trips, preset overrides."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from etude.errors import BadInputError, EtudeError
from etude.studies import SCHEMA_VERSION, VERDICTS, Claim, Result, Study, apply_overrides


def _claim(claim_id: str = "c1") -> Claim:
    return Claim(claim_id, "A statement.", "0.9 (Table 1)", "ours >= 0.8")


@dataclass(frozen=True)
class _Preset:
    steps: int = 10
    lr: float = 0.5
    flag: bool = False
    label: str = "x"
    sizes: tuple = (1, 2)


class _Study(Study):
    name = "toy"
    title = "Toy"
    citation = "Nobody 2024"
    presets = {"smoke": _Preset(steps=1), "quick": _Preset(), "full": _Preset(steps=1000)}


# --- Claim -------------------------------------------------------------------------------


def test_new_claim_is_not_run() -> None:
    claim = _claim()
    assert claim.verdict == "not-run"
    assert claim.measured == ""


@pytest.mark.parametrize(
    ("holds", "conclusive", "expected"),
    [
        (True, True, "holds"),
        (False, True, "fails"),
        (True, False, "inconclusive"),
        (False, False, "inconclusive"),
    ],
)
def test_decide_verdicts(holds: bool, conclusive: bool, expected: str) -> None:
    claim = _claim()
    returned = claim.decide("0.85", holds, conclusive=conclusive, note="n")
    assert returned is claim
    assert claim.verdict == expected
    assert claim.measured == "0.85"
    assert claim.note == "n"


def test_decide_is_conclusive_by_default() -> None:
    assert _claim().decide("0.1", False).verdict == "fails"


@pytest.mark.parametrize("verdict", ["maybe", "HOLDS", ""])
def test_invalid_verdict_raises_bad_input(verdict: str) -> None:
    with pytest.raises(BadInputError, match="verdict") as info:
        Claim("c", "s", "p", "c", verdict=verdict)  # type: ignore[arg-type]
    assert repr(verdict) in str(info.value)
    assert isinstance(info.value, EtudeError)


@pytest.mark.parametrize("verdict", VERDICTS)
def test_every_allowed_verdict_is_accepted(verdict: str) -> None:
    assert Claim("c", "s", "p", "c", verdict=verdict).verdict == verdict  # type: ignore[arg-type]


# --- Result ------------------------------------------------------------------------------


def _result() -> Result:
    c1 = _claim("c1").decide("0.85", True, note="a note")
    c2 = _claim("c2").decide("0.2", False)
    c3 = _claim("c3").decide("0.5", True, conclusive=False)
    return Result(
        "toy", "smoke", 3, claims=[c1, c2, c3, _claim("c4")],
        metrics={"loss": 0.25, "table": "a\nb", "counts": [1, 2]},
        artifacts=["plot.png", "table.csv"], status="ok", error="", wall_time_s=1.5,
        settings={"preset": "smoke", "steps": 1}, versions={"etude": "0.1.0"},
    )


def test_result_write_then_from_dict_round_trips(tmp_path) -> None:
    original = _result()
    path = original.write(tmp_path / "toy")
    assert path == tmp_path / "toy" / "result.json"
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    rebuilt = Result.from_dict(data)
    assert rebuilt == original
    assert [c.verdict for c in rebuilt.claims] == ["holds", "fails", "inconclusive", "not-run"]
    assert all(isinstance(c, Claim) for c in rebuilt.claims)
    assert rebuilt.claims[0].note == "a note"
    # the atomic write leaves no temporary file behind
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["result.json"]


def test_result_write_overwrites(tmp_path) -> None:
    _result().write(tmp_path)
    second = Result("toy", "full", 9)
    second.write(tmp_path)
    assert Result.from_dict(json.loads((tmp_path / "result.json").read_text())) == second


def test_from_dict_ignores_unknown_keys() -> None:
    data = _result().to_dict()
    data["added_in_a_later_version"] = 1
    data["claims"][0]["extra"] = "x"
    assert Result.from_dict(data) == _result()


def test_from_dict_rejects_bad_verdict() -> None:
    data = _result().to_dict()
    data["claims"][0]["verdict"] = "perhaps"
    with pytest.raises(BadInputError, match="perhaps"):
        Result.from_dict(data)


# --- apply_overrides ---------------------------------------------------------------------


def test_overrides_convert_each_type() -> None:
    preset = _Preset()
    new = apply_overrides(preset, {"steps": "50", "lr": "0.125", "flag": "true", "label": "hello"})
    assert new == _Preset(steps=50, lr=0.125, flag=True, label="hello")
    assert type(new.steps) is int
    assert type(new.lr) is float
    assert new.flag is True
    assert preset == _Preset()  # the original is not changed


def test_float_field_accepts_an_integer_string() -> None:
    new = apply_overrides(_Preset(), {"lr": "2"})
    assert new.lr == 2.0
    assert type(new.lr) is float


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("True", True), ("1", True),
                                                 ("false", False), ("FALSE", False), ("0", False)])
def test_bool_override_spellings(text: str, expected: bool) -> None:
    assert apply_overrides(_Preset(flag=not expected), {"flag": text}).flag is expected


def test_tuple_field_parses_json() -> None:
    assert apply_overrides(_Preset(), {"sizes": "[3, 4, 5]"}).sizes == (3, 4, 5)


def test_no_overrides_returns_the_preset() -> None:
    preset = _Preset()
    assert apply_overrides(preset, {}) is preset


def test_unknown_override_key_names_the_field() -> None:
    with pytest.raises(BadInputError) as info:
        apply_overrides(_Preset(), {"stpes": "5"})
    message = str(info.value)
    assert "'stpes'" in message
    assert "steps" in message  # the known fields are listed


@pytest.mark.parametrize(
    ("key", "text"),
    [("steps", "1.5"), ("steps", "ten"), ("steps", ""), ("lr", "fast"), ("flag", "yes"),
     ("flag", "2"), ("sizes", "[1,"), ("sizes", "3")],
)
def test_unconvertible_override_names_the_field(key: str, text: str) -> None:
    with pytest.raises(BadInputError) as info:
        apply_overrides(_Preset(), {key: text})
    message = str(info.value)
    assert repr(key) in message
    assert repr(text) in message


# --- Study.preset ------------------------------------------------------------------------


def test_study_preset_applies_overrides() -> None:
    assert _Study().preset("smoke", {"lr": "0.25"}) == _Preset(steps=1, lr=0.25)
    assert _Study().preset("full") == _Preset(steps=1000)


def test_unknown_preset_name_raises_bad_input() -> None:
    with pytest.raises(BadInputError) as info:
        _Study().preset("huge")
    message = str(info.value)
    assert "'huge'" in message
    assert "'toy'" in message
    assert "smoke" in message


def test_bad_override_through_study_preset_names_the_field() -> None:
    with pytest.raises(BadInputError, match="'nosuchfield'"):
        _Study().preset("quick", {"nosuchfield": "1"})
