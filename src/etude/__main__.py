"""`python -m etude`: the same as the `etude` command."""

import sys

from etude.cli import main

sys.exit(main())
