"""Two CPU DDP ranks (gloo) equal one process on the global batch: once for the runtime, once per domain.

One parametrized test over every (domain, case) of ``ddp_support.HELPERS``, all on the files of the one
shared 2-rank launch (``shared_run``): the runtime's ``make_fabric`` by hand and ``train_loop``
(a linear regression against plain full-batch SGD), metavae's four models, pwcca's MLP and CNN, BRUNO's
TP, GP and flow-less TP, transformer_ae, and amae's levels (AMAE, VQ, VQ with EMA and restarts) and a
two-level stack with its prior. Each ``check`` asserts that both ranks hold the same parameters, equal to
the one-process oracle's, and record its losses.
"""

from __future__ import annotations

import pytest
from tests.ddp_support import HELPERS, helper, shared_run, skip_on_windows

CASES = [(domain, case) for domain in HELPERS for case in helper(domain).CASES]


@skip_on_windows
@pytest.mark.parametrize(("domain", "case"), CASES, ids=[f"{d}-{c}" for d, c in CASES])
def test_two_ranks_equal_one_process_on_the_global_batch(domain: str, case: str) -> None:
    helper(domain).check(shared_run() / domain, case)
