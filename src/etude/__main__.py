"""`python -m etude ...` runs the command line (also what `torchrun -m etude` launches)."""

import sys

from etude.cli import main

sys.exit(main())
