"""`etude games ...` verbs: play learners against each other from the command line."""

from __future__ import annotations

import argparse


def _tournament(args: argparse.Namespace) -> int:
    from etude.games import ipd, matching_pennies
    from etude.games.tournament import tournament

    make = {"ipd": ipd, "matching-pennies": matching_pennies}[args.game]
    game = make(args.gamma) if args.gamma is not None else make()
    table = tournament(
        game, args.learners, seeds=args.seeds, steps=args.steps, lr=args.lr, opponent_lr=args.opponent_lr
    )
    print(table.table())
    return 0


def _coin(args: argparse.Namespace) -> int:
    from etude.errors import BadInputError
    from etude.games.coin_training import train_coin

    if args.batch < 1:
        raise BadInputError(f"--batch must be a positive number of games per update and seed, got {args.batch}")
    rows = ["| learners | own-colour share | reward per step | coins per step |", "|---|---|---|---|"]
    for learner in args.learners:
        h = train_coin(
            learner,
            learner,
            steps=args.steps,
            seeds=args.seeds,
            episodes=args.batch,
            horizon=args.horizon,
            grid=args.grid,
            lr=args.lr,
            opponent_lr=args.opponent_lr,
            hidden=args.hidden,
        )
        f = {k: float(v.mean()) for k, v in h.final.items()}
        rows.append(
            f"| {learner} vs {learner} | {f['own_share']:.3f} | {f['reward']:.3f} | {f['picks_per_step']:.3f} |"
        )
    print("\n".join(rows))
    return 0


def add_commands(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `etude games tournament` and `etude games coin` to the top-level subcommands."""
    games = sub.add_parser("games", help="iterated matrix games and the coin game (LOLA)")
    verbs = games.add_subparsers(dest="verb", required=True, parser_class=parser_class)
    tour = verbs.add_parser("tournament", help="every learner against every learner")
    tour.add_argument("--game", choices=["ipd", "matching-pennies"], default="ipd")
    tour.add_argument("--gamma", type=float, default=None)
    tour.add_argument(
        "--learners", nargs="+", default=["naive", "lookahead", "lola"], help="any of naive, lookahead, lola, nl-q"
    )
    tour.add_argument("--seeds", type=int, default=50)
    tour.add_argument("--steps", type=int, default=200)
    tour.add_argument("--lr", type=float, default=1.0)
    tour.add_argument("--opponent-lr", type=float, default=1.0)
    tour.set_defaults(func=_tournament)
    coin = verbs.add_parser("coin", help="train NL-PG / LOLA-PG pairs in the coin game, print their final play")
    coin.add_argument("--learners", nargs="+", choices=["naive", "lola"], default=["naive", "lola"])
    coin.add_argument("--grid", type=int, default=3)
    coin.add_argument("--batch", type=int, default=32, help="games per update and seed")
    coin.add_argument("--horizon", type=int, default=50)
    coin.add_argument("--seeds", type=int, default=4)
    coin.add_argument("--steps", type=int, default=50)
    coin.add_argument("--lr", type=float, default=0.02)
    coin.add_argument("--opponent-lr", type=float, default=0.3)
    coin.add_argument("--hidden", type=int, default=32)
    coin.set_defaults(func=_coin)
