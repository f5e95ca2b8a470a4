"""A self-contained `report.html` for a run folder (the localhost server is in `etude.studies.server`).

Images and audio are embedded as data URIs, so the page needs no network and no neighbouring
files at view time. Bounded for any folder: each artifact is embedded once (a name listed again is
skipped), a file over ``EMBED_LIMIT_BYTES`` and every file once ``EMBED_TOTAL_BYTES`` have been
embedded are plain links instead, and every link to a file is a relative path inside the run folder
(``./<study>/<artifact>``, each part percent-encoded), so no folder or artifact name can become a
``javascript:`` or other scheme. The claims table has a filter by verdict; each study has its plots,
samples with players, settings, versions and wall time. Broken folders get a note. A MIDI
artifact is shown by the previews its study wrote beside it; this module imports no domain package.
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
from pathlib import Path
from urllib.parse import quote

from etude.runtime.files import write_atomic
from etude.studies.protocol import VERDICTS, Result, preview_names
from etude.studies.report import (
    artifact_file,
    check_run_dir,
    collect_results,
    read_json,
    summary_cell,
    verdict_summary,
)
from etude.studies.server import make_server, serve

__all__ = [
    "EMBED_LIMIT_BYTES",
    "EMBED_TOTAL_BYTES",
    "write_html",
    "serve",
    "make_server",
    "markdown_table_to_html",
    "relative_href",
]

EMBED_LIMIT_BYTES = 20 * 2**20
"""Files larger than this are linked rather than embedded."""
EMBED_TOTAL_BYTES = 64 * 2**20
"""Embedded bytes of one report at most (before base64); later artifacts are linked rather than embedded."""


class _Budget:
    """The bytes a report may still embed."""

    def __init__(self, total: int | None = None) -> None:
        self.left = EMBED_TOTAL_BYTES if total is None else total

    def take(self, size: int) -> bool:
        """True (and the size spent) when a file of ``size`` bytes may be embedded."""
        if size > EMBED_LIMIT_BYTES or size > self.left:
            return False
        self.left -= size
        return True


def relative_href(study: str, name: str) -> str:
    """A link to ``<study>/<name>`` that can only be a relative path inside the run folder (escaped for HTML)."""
    parts = [quote(part, safe="") for part in f"{study}/{name}".split("/")]
    return _e("./" + "/".join(parts))


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.35rem .5rem;vertical-align:top;text-align:left}
th{background:#f3f3f3}
.verdict{font-weight:600;padding:.1rem .4rem;border-radius:.3rem;white-space:nowrap}
.v-holds{background:#d7f5dc}.v-fails{background:#fbd5d5}.v-inconclusive{background:#fdf1c7}
.v-not-run{background:#e5e5e5}
.note{background:#fff6e0;border-left:4px solid #e0a800;padding:.5rem .8rem;margin:.5rem 0}
img.plot{max-width:100%;border:1px solid #eee;margin:.5rem 0;display:block}
pre{background:#f7f7f7;padding:.6rem;overflow:auto;font-size:.8rem}
"""

_JS = """
function filterVerdict(v){
  document.querySelectorAll('#claims tbody tr').forEach(function(r){
    r.style.display = (v === 'all' || r.dataset.verdict === v) ? '' : 'none';
  });
}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def markdown_table_to_html(text: str) -> str:
    """Render text holding markdown pipe tables: table lines become <table>, others <p>."""
    out: list[str] = []
    rows: list[str] = []  # the lines of the table being read

    def flush() -> None:
        if rows:
            body = [r for r in rows if not set(r.replace("|", "").strip()) <= set("-: ")]
            cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in body]
            head = "".join(f"<th>{_e(c)}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rest}</tbody></table>")
            rows.clear()

    for line in text.splitlines():
        if line.strip().startswith("|"):
            rows.append(line)
            continue
        flush()
        if line.strip():
            out.append(f"<p>{_e(line)}</p>")
    flush()
    return "\n".join(out)


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _artifact_html(run_dir: Path, study: str, name: str, budget: _Budget) -> str:
    path, why = artifact_file(run_dir, study, name)
    if path is None:
        return f"<p>{_e(name)} <em>({_e(why)})</em></p>"
    size = path.stat().st_size
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    suffix = path.suffix.lower()
    href = relative_href(study, name)
    embeddable = mime.startswith(("image/", "audio/")) or suffix in (".mid", ".midi", ".wav")
    if embeddable and not budget.take(size):
        why = "over the per-file limit" if size > EMBED_LIMIT_BYTES else "the report's embedding budget is spent"
        return f'<p><a href="{href}">{_e(name)}</a> ({size / 2**20:.1f} MiB, not embedded: {why})</p>'
    if mime.startswith("image/"):
        return (
            f'<figure><img class="plot" alt="{_e(name)}" src="{_data_uri(mime, path.read_bytes())}">'
            f"<figcaption>{_e(name)}</figcaption></figure>"
        )
    if suffix in (".mid", ".midi"):
        tags = []
        wav_name, png_name = preview_names(name)
        for preview, kind in ((wav_name, "audio/wav"), (png_name, "image/png")):
            found, _ = artifact_file(run_dir, study, preview)
            if found is None or not budget.take(found.stat().st_size):
                continue
            uri = _data_uri(kind, found.read_bytes())
            tags.append(
                f'<audio controls preload="auto" src="{uri}"></audio>'
                if kind.startswith("audio/")
                else f'<img class="plot" alt="{_e(name)} piano roll" src="{uri}">'
            )
        link = f'<a download="{_e(path.name)}" href="{_data_uri("audio/midi", path.read_bytes())}">{_e(name)}</a>'
        if not tags:
            return f"<p>{link} (MIDI; the study wrote no preview of it)</p>"
        return f"<figure>{''.join(tags)}<figcaption>{link}</figcaption></figure>"
    if mime.startswith("audio/") or suffix == ".wav":
        return (
            f'<figure><audio controls preload="auto" src="{_data_uri("audio/wav" if suffix == ".wav" else mime, path.read_bytes())}">'
            f"</audio><figcaption>{_e(name)}</figcaption></figure>"
        )
    return f'<p><a href="{href}">{_e(name)}</a></p>'


def _summary_table(entries: list[tuple[str, Result | None, str]]) -> str:
    head = "".join(f"<th>{v}</th>" for v in VERDICTS)
    rows = "".join(
        f"<tr><td>{_e(study)}</td>" + "".join(f"<td>{_e(summary_cell(counts[v]))}</td>" for v in VERDICTS) + "</tr>"
        for study, counts in verdict_summary(entries).items()
    )
    return f'<table id="summary"><thead><tr><th>study</th>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _claims_table(entries: list[tuple[str, Result | None, str]]) -> str:
    rows = []
    for name, result, note in entries:
        if result is None or not result.claims:
            verdict = "not-run"
            rows.append(
                f'<tr data-verdict="{verdict}" data-study="{_e(name)}"><td>{_e(name)}</td><td colspan="4">'
                f'{_e(note or "no claims")}</td><td><span class="verdict v-{verdict}">{verdict}</span></td></tr>'
            )
            continue
        for claim in result.claims:
            verdict = claim.verdict if result.status == "ok" else "not-run"
            shown = verdict if result.status == "ok" else "not-run (crashed)"
            rows.append(
                f'<tr data-verdict="{verdict}" data-study="{_e(name)}"><td>{_e(name)}</td>'
                f"<td><b>{_e(claim.id)}</b>: {_e(claim.statement)}</td><td>{_e(claim.paper)}</td>"
                f"<td>{_e(claim.measured)}</td><td>{_e(claim.criterion)}</td>"
                f'<td><span class="verdict v-{verdict}">{_e(shown)}</span></td></tr>'
            )
    options = "".join(f'<option value="{v}">{v}</option>' for v in VERDICTS)
    return (
        f'<label>Show verdict: <select id="verdict-filter" onchange="filterVerdict(this.value)">'
        f'<option value="all">all</option>{options}</select></label>'
        '<table id="claims"><thead><tr><th>study</th><th>claim</th><th>paper</th><th>ours</th>'
        f"<th>criterion</th><th>verdict</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _study_section(run_dir: Path, name: str, result: Result | None, note: str, budget: _Budget) -> str:
    parts = [f'<section class="study" id="study-{_e(name)}"><h2>{_e(name)}</h2>']
    if note:
        parts.append(f'<div class="note">{_e(note)}</div>')
    if result is not None:
        wall = "unknown" if result.wall_time_s is None else f"{result.wall_time_s:.1f} s"
        parts.append(
            f"<p>Preset <code>{_e(result.preset)}</code>, seed {_e('?' if result.seed is None else result.seed)}, "
            f"wall time {wall}, status {_e(result.status)}.</p>"
        )
        if result.status == "crashed" and result.error:
            parts.append(f"<details><summary>error</summary><pre>{_e(result.error)}</pre></details>")
        for claim in result.claims:
            if claim.note:
                parts.append(f"<p><b>{_e(claim.id)}</b>: {_e(claim.note)}</p>")
        for key, value in result.metrics.items():
            if isinstance(value, str) and "\n" in value:
                parts.append(f"<h3>{_e(key)}</h3>{markdown_table_to_html(value)}")
        scalars = {k: v for k, v in result.metrics.items() if not (isinstance(v, str) and "\n" in v)}
        for artifact in dict.fromkeys(result.artifacts):  # each artifact once, in the order listed
            parts.append(_artifact_html(run_dir, name, artifact, budget))
        details = {"metrics": scalars, "settings": result.settings, "versions": result.versions}
        try:
            shown = json.dumps(details, indent=2, default=str)
        except (ValueError, RecursionError):
            shown = "(too deeply nested to show)"
        parts.append(f"<details><summary>metrics, settings and versions</summary><pre>{_e(shown)}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def write_html(run_dir: str | Path) -> Path:
    """Write `<run_dir>/report.html`, self-contained, and return its path."""
    run_dir = check_run_dir(run_dir)
    entries = collect_results(run_dir)
    header = "<p>No run.json in this folder.</p>"
    info_path = run_dir / "run.json"
    if info_path.exists() or info_path.is_symlink():
        try:
            info = read_json(run_dir, info_path)
            versions = info.get("versions") if isinstance(info.get("versions"), dict) else {}
            total = sum(r.wall_time_s or 0.0 for _, r, _ in entries if r is not None)
            header = (
                f"<p>Preset <code>{_e(info.get('preset'))}</code>, seed {_e(info.get('seed'))}, "
                f"started {_e(info.get('started'))}, total wall time {total:.1f} s. "
                f"etude {_e(versions.get('etude'))}, torch {_e(versions.get('torch'))}, "
                f"Python {_e(versions.get('python'))}.</p>"
            )
        except (OSError, ValueError, RecursionError, AttributeError):
            header = '<div class="note">run.json is unreadable.</div>'
    body = [
        f"<h1>etude reproduction report</h1>{header}",
        "<h2>Summary</h2>",
        _summary_table(entries),
        "<h2>Claims</h2>",
        _claims_table(entries),
    ]
    if not entries:
        body.append('<div class="note">No study folders found in this run.</div>')
    budget = _Budget()
    body += [_study_section(run_dir, name, result, note, budget) for name, result, note in entries]
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>etude report</title>'
        f"<style>{_CSS}</style><script>{_JS}</script></head><body>{''.join(body)}</body></html>"
    )
    return write_atomic(run_dir / "report.html", page, what="report")
