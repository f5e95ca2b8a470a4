"""Gather every study's `result.json` in a run folder into `report.md`.

The report opens with one claims table (paper figure, ours, verdict) over all studies, then a
section per study with its plots and artifacts. Broken folders (no result.json, a crashed
study, another schema version) are reported with a note instead of failing.
"""

from __future__ import annotations

import json
from pathlib import Path

from etude.errors import BadInputError
from etude.studies.protocol import SCHEMA_VERSION, Result

__all__ = ["collect_results", "write_report"]

_IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")


def collect_results(run_dir: Path) -> list[tuple[str, Result | None, str]]:
    """(study folder name, result or None, note) for every subfolder of the run folder."""
    entries = []
    for folder, name in _study_folders(run_dir):
        path = folder / "result.json"
        if not path.exists():
            entries.append((name, None, "no result.json: the study did not finish"))
            continue
        try:
            data = json.loads(path.read_text())
            result = Result.from_dict(data)
        except (OSError, ValueError, TypeError, BadInputError) as exc:
            entries.append((name, None, f"unreadable result.json ({type(exc).__name__})"))
            continue
        note = ""
        if data.get("schema_version") != SCHEMA_VERSION:
            note = f"result.json has schema version {data.get('schema_version')!r}, this etude writes {SCHEMA_VERSION}"
        if result.status == "crashed":
            note = (note + "; " if note else "") + "the study crashed: " + result.error_line()
        entries.append((name, result, note))
    return entries


def _seed_number(folder: Path) -> int:
    return int(folder.name.removeprefix("seed-"))


def _study_folders(run_dir: Path) -> list[tuple[Path, str]]:
    """(folder, name) of every study folder: ``study`` or, for runs over several seeds, ``study/seed-k``."""
    found = []
    for folder in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        seeds = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("seed-")
                 and p.name.removeprefix("seed-").isdigit()] if not (folder / "result.json").exists() else []
        if seeds:
            found += [(p, f"{folder.name}/{p.name}") for p in sorted(seeds, key=_seed_number)]
        else:
            found.append((folder, folder.name))
    return found


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(run_dir: str | Path) -> Path:
    """Write `<run_dir>/report.md` and return its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInputError(f"run folder {str(run_dir)!r} does not exist; run `etude reproduce --out {run_dir}` first")
    entries = collect_results(run_dir)
    lines = ["# etude reproduction report", ""]
    run_json = run_dir / "run.json"
    if run_json.exists():
        try:
            info = json.loads(run_json.read_text())
            lines += [f"Preset `{info.get('preset')}`, seed {info.get('seed')}, started {info.get('started')}; "
                      f"etude {info.get('versions', {}).get('etude')}, torch {info.get('versions', {}).get('torch')}.", ""]
        except ValueError:
            lines += ["run.json is unreadable.", ""]
    if not entries:
        lines += ["No study folders found in this run.", ""]
    lines += ["## Claims", "", "| study | claim | paper | ours | criterion | verdict |", "|---|---|---|---|---|---|"]
    for name, result, note in entries:
        if result is None or not result.claims:
            lines.append(f"| {name} | — | — | — | — | {_cell(note or 'no claims')} |")
            continue
        for claim in result.claims:
            verdict = claim.verdict if result.status == "ok" else "not-run (crashed)"
            lines.append(f"| {name} | **{_cell(claim.id)}**: {_cell(claim.statement)} | {_cell(claim.paper)} | "
                         f"{_cell(claim.measured)} | {_cell(claim.criterion)} | {verdict} |")
    lines.append("")
    for name, result, note in entries:
        lines += [f"## {name}", ""]
        if note:
            lines += [f"> Note: {note}", ""]
        if result is None:
            continue
        lines.append(f"Preset `{result.preset}`, seed {result.seed}, wall time {result.wall_time_s:.1f} s.")
        lines.append("")
        for claim in result.claims:
            if claim.note:
                lines.append(f"- **{claim.id}**: {claim.note}")
        if any(c.note for c in result.claims):
            lines.append("")
        for key, value in result.metrics.items():
            if isinstance(value, str) and "\n" in value:
                lines += [f"### {key}", "", value, ""]
        for artifact in result.artifacts:
            rel = f"{name}/{artifact}"
            exists = (run_dir / rel).exists()
            if artifact.lower().endswith(_IMAGE_SUFFIXES) and exists:
                lines += [f"![{artifact}]({rel})", ""]
            else:
                lines.append(f"- [{artifact}]({rel})" + ("" if exists else " (missing)"))
        lines.append("")
    path = run_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
