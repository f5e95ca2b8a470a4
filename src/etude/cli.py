"""The `etude` command line: list, reproduce, report, and each domain's verbs.

Any `EtudeError` is printed as one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Sequence

from etude.errors import BadInputError, EtudeError

__all__ = ["DOMAIN_CLIS", "main", "build_parser"]

DOMAIN_CLIS = [
    "etude.games.cli",
    "etude.similarity.cli",
    "etude.music.cli",
    "etude.audio.cli",
]
"""Modules whose `add_commands(subparsers, parser_class)` adds a domain's verbs; one line each."""


def _parse_set(values: Sequence[str] | None) -> dict[str, str]:
    overrides = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInputError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = value
    return overrides


def _cmd_list(args: argparse.Namespace) -> int:
    from etude.studies import get_study, study_names

    for name in study_names():
        study = get_study(name)
        print(f"{name}: {study.title}")
        print(f"  {study.citation}")
        print(f"  presets: {', '.join(study.presets)}")
        for claim in study.claims():
            print(f"  - {claim.id}: {claim.statement}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from etude.studies import run_studies

    results = run_studies(args.studies, preset=args.preset, seed=args.seed, out=args.out,
                          resume=args.resume, overrides=_parse_set(args.set))
    for result in results:
        verdicts = ", ".join(f"{c.id}: {c.verdict}" for c in result.claims)
        status = "" if result.status == "ok" else f" CRASHED ({result.error_line()})"
        print(f"{result.study} [{result.wall_time_s:.1f} s]{status}: {verdicts}")
    print(f"results in {args.out}; write the report with `etude report {args.out}`")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from etude.studies import write_report
    from etude.studies.html import serve, write_html

    print(write_report(args.run_dir))
    print(write_html(args.run_dir))
    if args.serve:
        print(f"serving http://127.0.0.1:{args.port}/report.html (Ctrl-C to stop)", flush=True)
        try:
            serve(args.run_dir, args.port)
        except OSError as exc:
            raise BadInputError(f"cannot serve on port {args.port}: {exc.strerror or exc}") from exc
        except KeyboardInterrupt:
            pass
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2), like every other etude error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"etude: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb."""
    parser = _Parser(prog="etude", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="the studies, their claims and presets").set_defaults(func=_cmd_list)

    rep = sub.add_parser("reproduce", help="run studies and write result.json per study")
    rep.add_argument("studies", nargs="*", help="study names (default: all)")
    rep.add_argument("--preset", default="quick", help="smoke, quick or full (default quick)")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--out", default="runs/latest", help="run folder (default runs/latest)")
    rep.add_argument("--resume", action="store_true", help="continue from checkpoints in --out")
    rep.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a preset field (one study)")
    rep.set_defaults(func=_cmd_reproduce)

    report = sub.add_parser("report", help="write report.md and a self-contained report.html for a run folder")
    report.add_argument("run_dir")
    report.add_argument("--serve", action="store_true", help="then serve the folder on localhost")
    report.add_argument("--port", type=int, default=8000)
    report.set_defaults(func=_cmd_report)

    for module in DOMAIN_CLIS:
        import_module(module).add_commands(sub, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `etude` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except EtudeError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"etude: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
