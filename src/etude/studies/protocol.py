"""The study protocol: claims with fixed criteria, studies with presets, results on disk.

A `Study` wires library parts into an experiment; it holds no math. Its `run` returns a
`Result` whose claims carry the paper's figure, ours, the criterion fixed before running
and a verdict. `Result.write` stores `result.json` (schema-versioned) in the study's folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from etude.errors import BadInputError
from etude.studies.fields import OVERRIDE_GROWTH, FieldRule, field_rules

__all__ = [
    "SCHEMA_VERSION",
    "VERDICTS",
    "PRESETS",
    "Verdict",
    "Claim",
    "Result",
    "Study",
    "apply_overrides",
    "override_limits",
    "OVERRIDE_GROWTH",
    "preview_names",
    "versions",
]

SCHEMA_VERSION = 1
Verdict = Literal["holds", "fails", "inconclusive", "not-run"]
VERDICTS: tuple[str, ...] = ("holds", "fails", "inconclusive", "not-run")
PRESETS: tuple[str, ...] = ("smoke", "quick", "long", "full")
"""Preset tiers: smoke (tests, seconds), quick (<= 5 min per study on 2 CPU cores), long (<= 60 min per
study on 2 CPU cores, the scale that decides claims), full (the paper's scale, GPUs)."""


@dataclass
class Claim:
    """One headline claim of a paper and what we measured of it.

    :param id: short identifier, unique within the study.
    :param statement: the claim in one sentence.
    :param paper: the paper's figure, with its source: a table, figure or section of the paper, or a file of
        its official repository.
    :param criterion: the rule that decides the verdict, fixed before running.
    :param measured: our figure, filled in by the run.
    :param verdict: 'holds', 'fails', 'inconclusive' (too small a run to tell) or 'not-run'.
    """

    id: str
    statement: str
    paper: str
    criterion: str
    measured: str = ""
    verdict: Verdict = "not-run"
    note: str = ""

    def decide(self, measured: str, holds: bool, *, conclusive: bool = True, note: str = "") -> Claim:
        """Record our figure and the verdict the fixed criterion gives."""
        self.measured = measured
        self.verdict = "inconclusive" if not conclusive else ("holds" if holds else "fails")
        self.note = note
        return self

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise BadInputError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def preview_names(artifact: str) -> tuple[str, str]:
    """Names of the previews a study may write beside an artifact the report cannot show: (WAV, PNG).

    ``samples/tune.mid`` -> (``samples/tune.preview.wav``, ``samples/tune.preview.png``); the report
    embeds whichever exist with the artifact (a domain writes them, e.g. ``etude.music.previews``).
    """
    head, _, base = artifact.rpartition("/")
    stem = base.rsplit(".", 1)[0] if "." in base else base
    prefix = f"{head}/" if head else ""
    return f"{prefix}{stem}.preview.wav", f"{prefix}{stem}.preview.png"


def versions() -> dict[str, str]:
    """Versions of Python and the main packages, recorded with every result."""
    import numpy
    import torch

    from etude import __version__

    return {
        "etude": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


@dataclass
class Result:
    """What one study run produced; `write` stores it as `<out_dir>/result.json`."""

    study: str
    preset: str
    seed: int | None
    claims: list[Claim] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    status: Literal["ok", "crashed"] = "ok"
    error: str = ""
    wall_time_s: float | None = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, notes: list[str] | None = None) -> Result:
        """Rebuild a result read from result.json; unknown keys are ignored.

        Strict by default: a field of the wrong type raises BadInputError naming it. With a
        ``notes`` list, a wrong-typed field is dropped instead (its default is used; a missing
        seed or wall time becomes None) and a note describing it is appended.
        """
        if not isinstance(data, dict):
            raise BadInputError(f"a result must be a JSON object, got {_kind(data)}")

        def refuse(message: str) -> None:
            if notes is None:
                raise BadInputError(f"result.json: {message}")
            notes.append(message)

        kwargs: dict[str, Any] = {}
        for key, expected in _FIELD_TYPES.items():
            if key not in data:
                continue
            value = data[key]
            if _is(value, expected) and (key != "status" or value in ("ok", "crashed")):
                kwargs[key] = value
            else:
                refuse(f"{key} is {_kind(value)}, expected {_EXPECTED[key]}")
        artifacts = data.get("artifacts", [])
        if not isinstance(artifacts, list):
            refuse(f"artifacts is {_kind(artifacts)}, expected a list of file names")
            artifacts = []
        kwargs["artifacts"] = [a for a in artifacts if isinstance(a, str)]
        if len(kwargs["artifacts"]) < len(artifacts):
            refuse(f"{len(artifacts) - len(kwargs['artifacts'])} artifact name(s) are not strings")
        claims = data.get("claims") or []
        if not isinstance(claims, list):
            refuse(f"claims is {_kind(claims)}, expected a list of JSON objects")
            claims = []
        kwargs["claims"] = []
        for i, item in enumerate(claims):
            claim = _claim(item)
            if isinstance(claim, str):
                refuse(f"claim {i} {claim}")
            else:
                kwargs["claims"].append(claim)
        if notes is not None:
            for key in ("study", "preset"):
                kwargs.setdefault(key, "?")
            kwargs.setdefault("seed", None)
            if "wall_time_s" not in kwargs:
                kwargs["wall_time_s"] = None
        else:
            missing = [k for k in ("study", "preset", "seed") if k not in kwargs]
            if missing:
                raise BadInputError(f"result.json: missing field(s) {missing}")
        return cls(**kwargs)

    def error_line(self) -> str:
        """The first line of the error text, or a placeholder when there is none."""
        return (self.error.splitlines() or ["(no error text)"])[0]

    def write(self, out_dir: str | Path) -> Path:
        """Write `result.json` into `out_dir` atomically (a unique temp file, then rename) and return its path."""
        from etude.runtime.files import write_atomic

        text = json.dumps(_jsonable(self.to_dict()), indent=2, default=str)
        return write_atomic(Path(out_dir) / "result.json", text, what="result file")


_FIELD_TYPES: dict[str, Any] = {
    "study": str,
    "preset": str,
    "seed": int,
    "metrics": dict,
    "status": str,
    "error": str,
    "wall_time_s": (int, float),
    "settings": dict,
    "versions": dict,
    "schema_version": int,
}
_EXPECTED = {
    "study": "a string",
    "preset": "a string",
    "seed": "an integer",
    "metrics": "a JSON object",
    "status": "'ok' or 'crashed'",
    "error": "a string",
    "wall_time_s": "a finite number",
    "settings": "a JSON object",
    "versions": "a JSON object",
    "schema_version": "an integer",
}


def _kind(value: Any) -> str:
    """How a note names a JSON value's type: 'null', 'a string', 'a list', ..."""
    if value is None:
        return "null"
    names = {
        bool: "a boolean",
        str: "a string",
        list: "a list",
        dict: "an object",
        int: "an integer",
        float: "a number",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def _is(value: Any, expected: Any) -> bool:
    if isinstance(value, bool) and expected is not str:
        return False
    if expected == (int, float):
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, expected)


def _claim(item: Any) -> Claim | str:
    """A Claim from a JSON object, or the reason it is not one."""
    if not isinstance(item, dict):
        return f"is {_kind(item)}, not an object"
    names = {f.name for f in dataclasses.fields(Claim)}
    kwargs = {k: v for k, v in item.items() if k in names}
    missing = [k for k in ("id", "statement", "paper", "criterion") if k not in kwargs]
    if missing:
        return f"lacks {', '.join(missing)}"
    wrong = [k for k, v in kwargs.items() if not isinstance(v, str)]
    if wrong:
        return f"has non-string {', '.join(wrong)}"
    if kwargs.get("verdict", "not-run") not in VERDICTS:
        return f"has verdict {kwargs['verdict']!r}, expected one of {VERDICTS}"
    return Claim(**kwargs)


def _jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as the strings 'nan', 'inf', '-inf' (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def override_limits(presets: Any) -> dict[str, FieldRule]:
    """Field -> the rule its overrides must follow, from a study's presets (see `etude.studies.fields`)."""
    return field_rules(presets)


def apply_overrides(preset: Any, overrides: dict[str, str], limits: dict[str, FieldRule] | None = None) -> Any:
    """A copy of the preset dataclass with fields set from strings ('steps=50'); bad keys or values raise.

    Each value is checked with its field's meaning (``limits``, from `override_limits` over the study's
    presets; by default the rules of ``preset`` alone): learning rates > 0, fractions inside (0, 1),
    counts >= 1, finite, bounded numbers (see `etude.studies.fields`).
    """
    if not overrides:
        return preset
    fields = {f.name: f for f in dataclasses.fields(preset)}
    rules = limits if limits is not None else field_rules([preset])
    changes: dict[str, Any] = {}
    for key, text in overrides.items():
        if key not in fields:
            raise BadInputError(f"unknown preset field {key!r}; expected one of {sorted(fields)}")
        current = getattr(preset, key)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                value: Any = text.lower() in ("true", "1")
            elif isinstance(current, (int, float, str)):
                if isinstance(current, (int, float)) and len(text) > 40:
                    raise ValueError(text)
                value = type(current)(text)
            elif isinstance(current, (tuple, list)):
                value = json.loads(text)
                if not isinstance(value, list):
                    raise TypeError(text)
                value = type(current)(value)
            else:
                value = json.loads(text)
        except (ValueError, TypeError, RecursionError) as exc:
            raise BadInputError(f"preset field {key!r} expects a {type(current).__name__}, got {text[:60]!r}") from exc
        changes[key] = rules[key].check(value) if key in rules else value
    return dataclasses.replace(preset, **changes)


class Study:
    """A paper's reproduction: name, citation, presets and `run`.

    Subclasses set the class attributes and implement `run(preset, seed, out_dir, resume)`,
    where `preset` is an instance of the study's preset dataclass; `claims()` lists the claims
    with their criteria before anything runs.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    citation: ClassVar[str]
    presets: ClassVar[dict[str, Any]]
    threads: ClassVar[int | None] = None
    """torch threads for the run; 1 suits many small ops (measured faster on 2 loaded cores)."""
    trains_with_fabric: ClassVar[bool] = False
    """True when `run` takes ``fabric=`` (devices, DDP, precision); the preset's ``device`` and
    ``precision`` fields, where present, are the Fabric defaults that the CLI's options override."""

    def claims(self) -> list[Claim]:
        """The study's claims with criteria, verdict 'not-run'."""
        raise NotImplementedError

    def datasets(self, preset: Any) -> tuple[str, ...]:
        """The `etude.data` datasets (by name) the run reads from disk; () for bundled data (the default).

        The runner locates them (``--data-dir``, ``--download``) before anything is written in ``--out``,
        so a missing one is refused in one line."""
        return ()

    def data_identity(self, preset: Any) -> dict[str, Any]:
        """What identifies the data the run reads beyond its preset and seed (a corpus's digest, a
        soundfont's name and size), recorded in ``run-record.json`` so that ``--resume`` on other data
        refuses; by default each dataset of `datasets` as found (`etude.data.use.dataset_identity`),
        empty for a study whose data the preset and seed determine."""
        names = self.datasets(preset)
        if not names:
            return {}
        from etude.data.use import dataset_identity

        data_dir = getattr(preset, "data_dir", "") or None
        return {name: dataset_identity(name, data_dir) for name in names}

    def preset(self, name: str, overrides: dict[str, str] | None = None) -> Any:
        """The named preset with overrides applied; an unknown name raises BadInputError."""
        if name not in self.presets:
            raise BadInputError(f"study {self.name!r} has no preset {name!r}; expected one of {sorted(self.presets)}")
        return apply_overrides(self.presets[name], overrides or {}, override_limits(self.presets.values()))

    def run(self, preset: Any, seed: int, out_dir: Path, resume: bool = False) -> Result:
        """Run the experiment and return its result; artifacts go under `out_dir`."""
        raise NotImplementedError
