"""`etude similarity A.npy B.npy --method pwcca|svcca|cca|cka`: the similarity of two saved representations."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import warnings
from pathlib import Path

from etude.errors import BadInputError

METHODS = ("pwcca", "svcca", "cca", "cka")


def _load(path: str, label: str):
    import numpy as np

    file = Path(path)
    if not file.is_file():
        raise BadInputError(f"{label}: no such file {path!r}")
    try:
        array = np.load(file, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError, UnpicklingError...
        raise BadInputError(f"{label}: {path!r} is not a readable .npy array ({type(exc).__name__})") from None
    if not hasattr(array, "shape"):
        raise BadInputError(f"{label}: {path!r} holds an .npz archive; save one array with numpy.save")
    return array


def _similarity(args: argparse.Namespace) -> int:
    from etude.similarity import ConstantInputWarning, SmallSampleWarning

    a, b = _load_pair(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SmallSampleWarning)
        warnings.simplefilter("always", ConstantInputWarning)
        value = _measure(args, a, b)
    for warning in caught:  # the library names its inputs x and y; here they are the files A and B
        text = re.sub(r"^(x|y)\b", lambda m: "A" if m.group(1) == "x" else "B", str(warning.message))
        print(f"etude: warning: {text}", file=sys.stderr)
    if not math.isfinite(value):
        raise BadInputError(f"the {args.method} similarity of A and B is not a finite number ({value})")
    if args.json:
        settings = {
            "pwcca": {"epsilon": args.epsilon, "variant": args.variant},
            "svcca": {"keep": args.keep},
            "cca": {"epsilon": args.epsilon, "threshold": args.threshold},
            "cka": {"debiased": args.debiased},
        }[args.method]
        shapes = {"a_shape": list(a.shape), "b_shape": list(b.shape)}
        record = {"method": args.method, "similarity": value, "a": args.a, "b": args.b, **shapes, **settings}
        print(json.dumps(record, allow_nan=False))
    else:
        print(f"{value:.6f}")
    return 0


def _load_pair(args: argparse.Namespace) -> tuple:
    """Files A and B as 2-D arrays (4-D conv maps flattened or pooled by --conv), checked as a pair."""
    from etude.similarity import flatten_conv, pool_conv
    from etude.similarity._validation import as_pair

    arrays = []
    for path, label in ((args.a, "A"), (args.b, "B")):
        array = _load(path, label)
        if array.ndim == 4:
            if args.conv is None:
                raise BadInputError(f"{label} has 4-D shape {array.shape}: pass --conv flatten or --conv pool")
            array = flatten_conv(array) if args.conv == "flatten" else pool_conv(array)
        arrays.append(array)
    as_pair(*arrays, names=("A", "B"))  # bad shapes, types or NaN are reported by the file's letter
    return arrays[0], arrays[1]


def _measure(args: argparse.Namespace, a, b) -> float:
    """The --method similarity of A and B with its options."""
    from etude.similarity import linear_cka, mean_cca, pwcca, svcca

    if args.method == "pwcca":
        return pwcca(a, b, epsilon=args.epsilon, variant=args.variant)
    if args.method == "svcca":
        keep = int(args.keep) if args.keep > 1 and args.keep.is_integer() else args.keep
        return svcca(a, b, keep=keep)
    if args.method == "cca":
        return mean_cca(a, b, epsilon=args.epsilon, threshold=args.threshold)
    return linear_cka(a, b, debiased=args.debiased)


def add_commands(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add `etude similarity A.npy B.npy` to the top-level subcommands."""
    cmd = sub.add_parser("similarity", help="similarity of two representations saved as .npy (datapoints, neurons)")
    cmd.add_argument("a", help="first representation, .npy shaped (datapoints, neurons); PWCCA weights come from it")
    cmd.add_argument("b", help="second representation, .npy with the same datapoints")
    cmd.add_argument("--method", choices=METHODS, default="pwcca", help="default pwcca")
    cmd.add_argument("--json", action="store_true", help="print a JSON object instead of the bare number")
    cmd.add_argument("--epsilon", type=float, default=0.0, help="relative ridge for cca and pwcca (default 0)")
    cmd.add_argument("--variant", choices=("reference", "paper"), default="reference", help="pwcca weighting")
    cmd.add_argument(
        "--keep",
        type=float,
        default=0.99,
        help="svcca: share of the singular-value sum to keep (default 0.99; 1 keeps all), or a whole "
        "number > 1 of directions",
    )
    cmd.add_argument("--threshold", type=float, default=None, help="cca: average up to this share of the sum")
    cmd.add_argument("--debiased", action="store_true", help="cka: unbiased HSIC estimator")
    cmd.add_argument(
        "--conv",
        choices=("flatten", "pool"),
        default=None,
        help="4-D (N, C, H, W) inputs: positions as datapoints, or mean over space",
    )
    cmd.set_defaults(func=_similarity)
