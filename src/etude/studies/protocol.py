"""The study protocol: claims with fixed criteria, studies with presets, results on disk.

A `Study` wires library parts into an experiment; it holds no math. Its `run` returns a
`Result` whose claims carry the paper's figure, ours, the criterion fixed before running
and a verdict. `Result.write` stores `result.json` (schema-versioned) in the study's folder.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from etude.errors import BadInputError

__all__ = [
    "SCHEMA_VERSION",
    "VERDICTS",
    "PRESETS",
    "Verdict",
    "Claim",
    "Result",
    "Study",
    "apply_overrides",
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
    :param paper: the paper's figure, with its source (table, section or papers.md).
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

    def decide(self, measured: str, holds: bool, *, conclusive: bool = True, note: str = "") -> "Claim":
        """Record our figure and the verdict the fixed criterion gives."""
        self.measured = measured
        self.verdict = "inconclusive" if not conclusive else ("holds" if holds else "fails")
        self.note = note
        return self

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise BadInputError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def versions() -> dict[str, str]:
    """Versions of Python and the main packages, recorded with every result."""
    import numpy
    import torch

    from etude import __version__

    return {"etude": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform()}


@dataclass
class Result:
    """What one study run produced; `write` stores it as `<out_dir>/result.json`."""

    study: str
    preset: str
    seed: int
    claims: list[Claim] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    status: Literal["ok", "crashed"] = "ok"
    error: str = ""
    wall_time_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        """Rebuild a result read from result.json; unknown keys are ignored."""
        if not isinstance(data, dict):
            raise BadInputError(f"a result must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        claim_fields = {f.name for f in dataclasses.fields(Claim)}
        claims = data.get("claims") or []
        if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
            raise BadInputError("a result's claims must be a list of JSON objects")
        kwargs["claims"] = [Claim(**{k: v for k, v in c.items() if k in claim_fields}) for c in claims]
        return cls(**kwargs)

    def error_line(self) -> str:
        """The first line of the error text, or a placeholder when there is none."""
        return (self.error.splitlines() or ["(no error text)"])[0]

    def write(self, out_dir: str | Path) -> Path:
        """Write `result.json` into `out_dir` atomically and return its path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "result.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        tmp.replace(path)
        return path


def apply_overrides(preset: Any, overrides: dict[str, str]) -> Any:
    """A copy of the preset dataclass with fields set from strings ('steps=50'); bad keys raise."""
    if not overrides:
        return preset
    fields = {f.name: f for f in dataclasses.fields(preset)}
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
                value = type(current)(text)
            elif isinstance(current, (tuple, list)):
                value = type(current)(json.loads(text))
            else:
                value = json.loads(text)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise BadInputError(
                f"preset field {key!r} expects a {type(current).__name__}, got {text!r}"
            ) from exc
        changes[key] = value
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

    def preset(self, name: str, overrides: dict[str, str] | None = None) -> Any:
        """The named preset with overrides applied; an unknown name raises BadInputError."""
        if name not in self.presets:
            raise BadInputError(f"study {self.name!r} has no preset {name!r}; expected one of {sorted(self.presets)}")
        return apply_overrides(self.presets[name], overrides or {})

    def run(self, preset: Any, seed: int, out_dir: Path, resume: bool = False) -> Result:
        """Run the experiment and return its result; artifacts go under `out_dir`."""
        raise NotImplementedError
