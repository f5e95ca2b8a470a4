"""``python -m etude``: the `etude` command line (also what ``torchrun -m etude`` runs on each rank)."""

import sys

from etude.cli import main

if __name__ == "__main__":
    sys.exit(main())
