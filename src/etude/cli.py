"""The `etude` command line: list, reproduce, report, and each domain's verbs.

Any `EtudeError` is printed as one line on stderr and exits with status 2; so is any other
exception (naming the argument it concerns), whose traceback `--debug` or ETUDE_DEBUG=1 shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from importlib import import_module

from etude.errors import BadInputError, EtudeError

__all__ = ["DOMAIN_CLIS", "main", "build_parser"]

DOMAIN_CLIS = [
    "etude.games.cli",
    "etude.similarity.cli",
    "etude.music.cli",
    "etude.audio.cli",
    "etude.data.cli",
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


_MAX_SEEDS = 1000
"""Most seeds one run may name."""


def _parse_seeds(text: str) -> list[int]:
    """'0,1,2' or a range '0-4' (inclusive) -> a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high if sep else low)
        except ValueError:
            raise BadInputError(
                f"--seeds expects comma-separated ints or ranges like 0,1,2 or 0-4, got {text!r}"
            ) from None
        if last < first or len(seeds) + last - first + 1 > _MAX_SEEDS:
            raise BadInputError(
                f"--seeds {text!r} must name 1 to {_MAX_SEEDS} seeds, each range low-high with low <= high"
            )
        seeds += range(first, last + 1)
    return seeds


def _parse_jobs(text: str, cores: int) -> int:
    """'auto' -> the usable cores; otherwise a positive int."""
    if text == "auto":
        return cores
    try:
        return int(text)
    except ValueError:
        raise BadInputError(f"--jobs expects a positive int or 'auto', got {text!r}") from None


def _cmd_list(args: argparse.Namespace) -> int:
    from etude.studies import get_study, study_names

    for name in study_names():
        study = get_study(name)
        package = type(study).__module__.rpartition(".")[0]  # the library the study wires: etude.games, ...
        print(f"{name} ({package}): {study.title}")
        print(f"  {study.citation}")
        print(f"  presets: {', '.join(study.presets)}")
        for claim in study.claims():
            print(f"  - {claim.id}: {claim.statement}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from etude.studies import run_studies
    from etude.studies.parallel import default_jobs

    if args.seeds is not None and args.seed is not None:
        raise BadInputError("give either --seed or --seeds, not both")
    seed = _parse_seeds(args.seeds) if args.seeds is not None else (0 if args.seed is None else args.seed)
    jobs = _parse_jobs(args.jobs, default_jobs())
    from etude.runtime import fabric_run_settings

    given = {key: getattr(args, key) for key in _FABRIC_OPTIONS if getattr(args, key) is not None}
    distributed = {**fabric_run_settings(), **given}  # `fabric run`'s options, then the command line's
    results = run_studies(
        args.studies,
        preset=args.preset,
        seed=seed,
        out=args.out,
        resume=args.resume,
        overrides=_parse_set(args.set),
        jobs=jobs,
        distributed=distributed,
        data_dir=args.data_dir,
        download=args.download,
    )
    from etude.runtime import is_rank_zero

    if not is_rank_zero():
        return 0  # the other ranks trained along; rank 0 reports
    several = not isinstance(seed, int)
    for result in results:
        verdicts = ", ".join(f"{c.id}: {c.verdict}" for c in result.claims)
        status = "" if result.status == "ok" else f" CRASHED ({result.error_line()})"
        label = f"{result.study} seed {result.seed}" if several else result.study
        print(f"{label} [{result.wall_time_s:.1f} s]{status}: {verdicts}")
    print(f"results in {args.out}; write the report with `etude report {args.out}`")
    crashed = [r for r in results if r.status != "ok"]
    if crashed:
        names = ", ".join(f"{r.study} seed {r.seed}" if several else r.study for r in crashed)
        print(f"etude: {len(crashed)} of {len(results)} crashed: {names}", file=sys.stderr)
        return 1
    return 0


REPRODUCE_EXIT_CODES = """exit status:
  0    every study finished (its claims may hold, fail or be inconclusive)
  1    at least one study crashed; the others still ran, their results are
       written and `etude report` renders them, the crash included
  2    bad input, refused in one line: before anything runs, an unknown study or
       preset, a preset field out of its range (--set), an --out in use by another
       run, a --resume whose recorded settings differ (seed, preset field,
       precision, ...), a preset's dataset that is missing (see `etude data`); or a
       corrupt or ill-fitting checkpoint met on --resume
  130  interrupted (Ctrl-C)"""
"""The exit codes of `etude reproduce`, shown by its --help (DESIGN.md states the same)."""

_FABRIC_OPTIONS = ("devices", "strategy", "precision", "num_nodes", "accelerator")
"""`reproduce` options that become `etude.runtime.Distributed` fields (for studies training through Fabric)."""


def _cmd_report(args: argparse.Namespace) -> int:
    from etude.studies import write_report
    from etude.studies.html import write_html
    from etude.studies.server import check_port, make_server, serve

    if args.serve:
        check_port(args.port)
    print(write_report(args.run_dir))
    print(write_html(args.run_dir))
    if args.serve:
        server = make_server(args.run_dir, args.port)
        print(f"serving http://127.0.0.1:{server.server_address[1]}/report.html (Ctrl-C to stop)", flush=True)
        try:
            serve(args.run_dir, server=server)
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
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error (also ETUDE_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("list", help="the studies, their claims and presets").set_defaults(func=_cmd_list)

    _add_reproduce(sub)
    _add_report(sub)

    for module in DOMAIN_CLIS:
        import_module(module).add_commands(sub, _Parser)
    return parser


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    """The ``reproduce`` verb: studies, preset, seeds, jobs, run folder, data, and scaling out."""
    rep = sub.add_parser(
        "reproduce",
        help="run studies and write result.json per study",
        description="Run studies and write result.json per study (and run-record.json, what shaped it).",
        epilog=REPRODUCE_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument("studies", nargs="*", help="study names (default: all)")
    rep.add_argument("--preset", default="quick", help="smoke, quick, long or full (default quick)")
    rep.add_argument("--seed", type=int, default=None, help="the seed (default 0)")
    rep.add_argument(
        "--seeds",
        default=None,
        metavar="LIST",
        help="several seeds, e.g. 0,1,2 or 0-4; results in <out>/<study>/seed-<k>/",
    )
    rep.add_argument(
        "--jobs",
        default="1",
        metavar="N",
        help="worker processes running studies and seeds in parallel, or 'auto' for one per core (default 1)",
    )
    rep.add_argument("--out", default="runs/latest", help="run folder (default runs/latest)")
    rep.add_argument("--resume", action="store_true", help="continue from checkpoints in --out")
    rep.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a preset field (one study)")
    rep.add_argument(
        "--data-dir",
        dest="data_dir",
        default=None,
        metavar="DIR",
        help="where the preset's dataset is looked for first (see `etude data`)",
    )
    rep.add_argument("--download", action="store_true", help="fetch a missing dataset first (never done otherwise)")
    _add_scaling(rep)
    rep.set_defaults(func=_cmd_reproduce)


def _add_scaling(rep: argparse.ArgumentParser) -> None:
    """``reproduce``'s Lightning Fabric options: devices, strategy, precision, nodes, accelerator."""
    scale = rep.add_argument_group("scaling out (studies that train through Lightning Fabric; see README)")
    scale.add_argument("--devices", type=int, default=None, metavar="N", help="processes (devices) per node")
    scale.add_argument("--strategy", default=None, help="'auto' (one device) or 'ddp'")
    scale.add_argument("--precision", default=None, help="e.g. 32-true, bf16-mixed (default: the preset's)")
    scale.add_argument(
        "--num-nodes",
        dest="num_nodes",
        type=int,
        default=None,
        metavar="N",
        help="machines (launch with torchrun or fabric run)",
    )
    scale.add_argument("--accelerator", default=None, help="auto, cpu, cuda, gpu, mps (default: the preset's device)")


def _add_report(sub: argparse._SubParsersAction) -> None:
    """The ``report`` verb: write report.md and report.html for a run folder, optionally serve it."""
    report = sub.add_parser("report", help="write report.md and a self-contained report.html for a run folder")
    report.add_argument("run_dir")
    report.add_argument("--serve", action="store_true", help="then serve the folder on localhost")
    report.add_argument("--port", type=int, default=8000, help="1-65535, or 0 for any free port (default 8000)")
    report.set_defaults(func=_cmd_report)


def _debug(args: argparse.Namespace | None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("ETUDE_DEBUG", "") not in ("", "0")


def _blamed_argument(args: argparse.Namespace, exc: BaseException) -> str:
    """The argument whose value the exception concerns (an OSError's file name first), or ''."""
    values = {k: v for k, v in vars(args).items() if k not in ("func", "debug", "command", "verb")}
    items = [
        (k, item)
        for k, v in values.items()
        for item in (v if isinstance(v, list) else [v])
        if isinstance(item, str) and item
    ]
    files = {str(f) for f in (getattr(exc, "filename", None), getattr(exc, "filename2", None)) if f}
    for key, item in items:
        if item in files or any(f.startswith(item.rstrip("/") + "/") for f in files):
            return key
    text = str(exc)
    for key, item in items:
        if len(item) >= 3 and item in text:
            return key
    return ""


def _flag(parser: argparse.ArgumentParser, dest: str) -> str:
    """How the user wrote the argument stored as ``dest``: its longest option string, or its name."""
    stack, flags = [parser], []
    while stack:
        for action in stack.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
            elif action.dest == dest and action.option_strings:
                flags.append(max(action.option_strings, key=len))
    return flags[0] if flags else dest.upper()


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `etude` console script; returns the exit status.

    An `EtudeError` is printed as one line (exit 2). Any other exception is a bug or an input
    nothing checked: it is also printed as one line naming the argument it concerns, and its
    traceback is shown only with `--debug` or ETUDE_DEBUG=1.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the verb
    args = parser.parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    try:
        return args.func(args)
    except EtudeError as exc:
        if _debug(args):
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"etude: error: {_one_line(message, 500)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("etude: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `etude list | head`: the reader left; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, never a traceback
        if _debug(args):
            traceback.print_exc()
        key = _blamed_argument(args, exc)
        where = f"{_flag(parser, key)} {getattr(args, key)!r}: " if key else ""
        if isinstance(exc, OSError) and exc.strerror:
            detail = f"{exc.strerror}" + (f": {exc.filename!r}" if exc.filename and not key else "")
        else:
            detail = f"{type(exc).__name__}: {exc}"
        hint = "" if _debug(args) else " (rerun with --debug for the traceback)"
        print(f"etude: error: {_one_line(where + detail)}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
