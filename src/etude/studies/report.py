"""Gather every study's `result.json` in a run folder into `report.md`.

The report opens with a summary (verdict counts per study and the seeds behind them) and one
claims table (paper figure, ours, verdict) over all studies, then a section per study with its
plots and artifacts. Broken folders (no result.json, a crashed study, another schema version,
wrong-typed fields) are reported with a note instead of failing. Nothing outside the run folder
is read: artifact names with `..`, absolute paths and links that leave the folder are refused.
"""

from __future__ import annotations

import html
import json
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from etude.errors import BadInputError
from etude.runtime.files import write_atomic
from etude.studies.protocol import SCHEMA_VERSION, VERDICTS, Result

__all__ = ["artifact_file", "check_run_dir", "collect_results", "inside", "verdict_summary", "write_report"]

_IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
MAX_JSON_BYTES = 16 * 2**20
"""A result.json or run.json larger than this is not read."""


def inside(root: Path, path: Path) -> Path | None:
    """``path`` resolved (links followed) when it exists and lies inside ``root``, else None."""
    try:
        resolved = path.resolve(strict=True)
        return resolved if resolved.is_relative_to(root.resolve(strict=True)) else None
    except (OSError, RuntimeError):  # missing, or a link loop
        return None


def artifact_file(run_dir: Path, study: str, name: str) -> tuple[Path | None, str]:
    """(path, "") when artifact ``name`` of ``study`` is a regular file inside the run folder, else (None, why).

    Refused: empty names, absolute paths, any ``..`` part, and links that resolve outside ``run_dir``.
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        return None, "refused: not a file name"
    posix, windows = PurePosixPath(name.replace("\\", "/")), PureWindowsPath(name)
    if posix.is_absolute() or windows.drive or windows.root or ".." in posix.parts:
        return None, "refused: outside the run folder"
    path = run_dir / study / posix
    try:
        present = path.exists() or path.is_symlink()
    except OSError:  # e.g. a name longer than the file system allows
        return None, "refused: not a file name"
    if not present:
        return None, "missing"
    resolved = inside(run_dir, path)
    if resolved is None:
        return None, "refused: a link that leaves the run folder"
    if not resolved.is_file():
        return None, "refused: not a regular file"
    return path, ""


def read_json(run_dir: Path, path: Path) -> Any:
    """The JSON value (of any JSON type) of a file inside the run folder; OSError/ValueError/RecursionError otherwise."""
    if inside(run_dir, path) is None:
        raise ValueError("a link that leaves the run folder")
    if not path.is_file():
        raise IsADirectoryError(str(path))
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"larger than {MAX_JSON_BYTES // 2**20} MiB")
    return json.loads(path.read_bytes())


def check_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path when it names an existing folder; else BadInputError."""
    if not str(run_dir).strip():
        raise BadInputError("the run folder must be named, got an empty string")
    path = Path(run_dir)
    if not path.is_dir():
        raise BadInputError(f"run folder {str(path)!r} does not exist; run `etude reproduce --out {path}` first")
    return path


def collect_results(run_dir: Path) -> list[tuple[str, Result | None, str]]:
    """(study folder name, result or None, note) for every subfolder of the run folder."""
    run_dir = Path(run_dir)
    entries: list[tuple[str, Result | None, str]] = []
    for folder, name in _study_folders(run_dir):
        if inside(run_dir, folder) is None:
            entries.append((name, None, "refused: a link that leaves the run folder"))
            continue
        path = folder / "result.json"
        if not (path.exists() or path.is_symlink()):
            entries.append((name, None, "no result.json: the study did not finish"))
            continue
        notes: list[str] = []
        try:
            data = read_json(run_dir, path)
            result = Result.from_dict(data, notes=notes)
        except (OSError, ValueError, TypeError, RecursionError, BadInputError) as exc:
            entries.append((name, None, f"unreadable result.json ({type(exc).__name__})"))
            continue
        if notes:
            notes = ["result.json has wrong-typed fields: " + "; ".join(notes)]
        if data.get("schema_version") != SCHEMA_VERSION:
            notes.insert(
                0, f"result.json has schema version {data.get('schema_version')!r}, this etude writes {SCHEMA_VERSION}"
            )
        if result.status == "crashed":
            notes.append("the study crashed: " + result.error_line())
        entries.append((name, result, "; ".join(notes)))
    return entries


def _seed_number(folder: Path) -> int:
    return int(folder.name.removeprefix("seed-"))


def _study_folders(run_dir: Path) -> list[tuple[Path, str]]:
    """(folder, name) of every study folder: ``study`` or, for runs over several seeds, ``study/seed-k``.

    A folder that is a link out of the run folder is listed as itself (and refused), not searched.
    """
    found = []
    for folder in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        seeds = []
        if inside(run_dir, folder) is not None and not (folder / "result.json").exists():
            seeds = [
                p
                for p in folder.iterdir()
                if p.is_dir() and p.name.startswith("seed-") and p.name.removeprefix("seed-").isdigit()
            ]
        if seeds:
            found += [(p, f"{folder.name}/{p.name}") for p in sorted(seeds, key=_seed_number)]
        else:
            found.append((folder, folder.name))
    return found


def verdict_summary(entries: list[tuple[str, Result | None, str]]) -> dict[str, dict[str, list]]:
    """study -> verdict -> the seed of each claim with that verdict (a crashed study's claims are not-run)."""
    summary: dict[str, dict[str, list]] = {}
    for name, result, _ in entries:
        counts = summary.setdefault(
            result.study if result is not None and result.study != "?" else name, {v: [] for v in VERDICTS}
        )
        if result is None:
            continue
        for claim in result.claims:
            counts[claim.verdict if result.status == "ok" else "not-run"].append(result.seed)
    return summary


def summary_cell(seeds: list) -> str:
    """'0', or '3 (seed 0)', or '4 (seeds 0, 1)': a count and the distinct seeds behind it."""
    if not seeds:
        return "0"
    distinct = sorted({s for s in seeds if s is not None}) + (["?"] if None in seeds else [])
    word = "seed" if len(distinct) == 1 else "seeds"
    return f"{len(seeds)} ({word} {', '.join(map(str, distinct))})"


def _md(text: object) -> str:
    """Text for report.md: HTML escaped, so nothing in a result becomes markup."""
    return html.escape(str(text), quote=False)


def _cell(text: object) -> str:
    return _md(text).replace("|", "\\|").replace("\n", " ")


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} s"


def write_report(run_dir: str | Path) -> Path:
    """Write `<run_dir>/report.md` and return its path."""
    run_dir = check_run_dir(run_dir)
    entries = collect_results(run_dir)
    lines = ["# etude reproduction report", ""]
    lines += _run_lines(run_dir)
    if not entries:
        lines += ["No study folders found in this run.", ""]
    lines += _summary_lines(entries)
    lines += _claim_lines(entries)
    for name, result, note in entries:
        lines += _study_lines(run_dir, name, result, note)
    return write_atomic(run_dir / "report.md", "\n".join(lines), what="report")


def _run_lines(run_dir: Path) -> list[str]:
    """The run's preset, seed, start and versions from run.json (none without one; a line if unreadable)."""
    run_json = run_dir / "run.json"
    if not (run_json.exists() or run_json.is_symlink()):
        return []
    try:
        info = read_json(run_dir, run_json)
        versions = info.get("versions") if isinstance(info.get("versions"), dict) else {}
        return [
            f"Preset `{_md(info.get('preset'))}`, seed {_md(info.get('seed'))}, started "
            f"{_md(info.get('started'))}; etude {_md(versions.get('etude'))}, "
            f"torch {_md(versions.get('torch'))}.",
            "",
        ]
    except (OSError, ValueError, RecursionError, AttributeError):
        return ["run.json is unreadable.", ""]


def _summary_lines(entries: list[tuple[str, Result | None, str]]) -> list[str]:
    """The summary table: per study, the seeds of each verdict."""
    lines = ["## Summary", "", "| study | " + " | ".join(VERDICTS) + " |", "|---" * (len(VERDICTS) + 1) + "|"]
    for study, counts in verdict_summary(entries).items():
        lines.append(f"| {_cell(study)} | " + " | ".join(summary_cell(counts[v]) for v in VERDICTS) + " |")
    return lines


def _claim_lines(entries: list[tuple[str, Result | None, str]]) -> list[str]:
    """The claims table: one row per claim (a crashed study's are not run), one per study without claims."""
    lines = [
        "",
        "## Claims",
        "",
        "| study | claim | paper | ours | criterion | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name, result, note in entries:
        if result is None or not result.claims:
            lines.append(f"| {_cell(name)} | — | — | — | — | {_cell(note or 'no claims')} |")
            continue
        for claim in result.claims:
            verdict = claim.verdict if result.status == "ok" else "not-run (crashed)"
            lines.append(
                f"| {_cell(name)} | **{_cell(claim.id)}**: {_cell(claim.statement)} | {_cell(claim.paper)} | "
                f"{_cell(claim.measured)} | {_cell(claim.criterion)} | {verdict} |"
            )
    lines.append("")
    return lines


def _study_lines(run_dir: Path, name: str, result: Result | None, note: str) -> list[str]:
    """One study's section: its note, preset, seed and wall time, claim notes, text metrics and artifacts."""
    lines = [f"## {_md(name)}", ""]
    if note:
        lines += [f"> Note: {_cell(note)}", ""]
    if result is None:
        return lines
    lines += [
        f"Preset `{_md(result.preset)}`, seed {_md('?' if result.seed is None else result.seed)}, "
        f"wall time {_seconds(result.wall_time_s)}.",
        "",
    ]
    for claim in result.claims:
        if claim.note:
            lines.append(f"- **{_cell(claim.id)}**: {_cell(claim.note)}")
    if any(c.note for c in result.claims):
        lines.append("")
    for key, value in result.metrics.items():
        if isinstance(value, str) and "\n" in value:
            lines += [f"### {_cell(key)}", "", _md(value), ""]
    lines += _artifact_lines(run_dir, name, result.artifacts)
    lines.append("")
    return lines


def _artifact_lines(run_dir: Path, name: str, artifacts: list[str]) -> list[str]:
    """Each artifact once: an image inline, another file as a link, a missing or unsafe one with why."""
    lines: list[str] = []
    for artifact in dict.fromkeys(artifacts):  # each artifact once
        path, why = artifact_file(run_dir, name, artifact)
        rel = "./" + "/".join(quote(part, safe="") for part in f"{name}/{artifact}".split("/"))
        if path is None:
            lines.append(f"- {_cell(artifact)} ({why})")
        elif artifact.lower().endswith(_IMAGE_SUFFIXES):
            lines += [f"![{_cell(artifact)}]({rel})", ""]
        else:
            lines.append(f"- [{_cell(artifact)}]({rel})")
    return lines
