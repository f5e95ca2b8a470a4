"""`etude games ...` verbs: play learners against each other from the command line."""

from __future__ import annotations

import argparse


def _tournament(args: argparse.Namespace) -> int:
    from etude.games import ipd, matching_pennies
    from etude.games.tournament import tournament

    make = {"ipd": ipd, "matching-pennies": matching_pennies}[args.game]
    game = make(args.gamma) if args.gamma is not None else make()
    table = tournament(game, args.learners, seeds=args.seeds, steps=args.steps, lr=args.lr,
                       opponent_lr=args.opponent_lr)
    print(table.table())
    return 0


def add_commands(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `etude games tournament` to the top-level subcommands."""
    games = sub.add_parser("games", help="iterated matrix games (LOLA)")
    verbs = games.add_subparsers(dest="verb", required=True, parser_class=parser_class)
    tour = verbs.add_parser("tournament", help="every learner against every learner")
    tour.add_argument("--game", choices=["ipd", "matching-pennies"], default="ipd")
    tour.add_argument("--gamma", type=float, default=None)
    tour.add_argument("--learners", nargs="+", default=["naive", "lookahead", "lola"])
    tour.add_argument("--seeds", type=int, default=50)
    tour.add_argument("--steps", type=int, default=200)
    tour.add_argument("--lr", type=float, default=1.0)
    tour.add_argument("--opponent-lr", type=float, default=1.0)
    tour.set_defaults(func=_tournament)
