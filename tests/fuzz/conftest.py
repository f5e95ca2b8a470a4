"""Hypothesis settings of the fuzz suite: few examples, derandomized, no per-example deadline.

The profile keeps `make test` within budget on 2 loaded cores (about a minute for the whole suite);
``ETUDE_FUZZ_EXAMPLES`` raises the example count for a longer local run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "etude",
    max_examples=int(os.environ.get("ETUDE_FUZZ_EXAMPLES", "25")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
settings.load_profile("etude")
