"""amae training under 2-rank CPU DDP (gloo) equals one process on the global batch.

The oracle is ``train_model`` / ``fit_hierarchy`` without a fabric (plain PyTorch, one process,
the whole global batch of crops). Two ranks, each on its half of every global batch, end with the
same parameters *and* buffers (asserted by tests/runtime/test_ddp.py on the shared launch,
``ddp_fit.check``), for the AMAE (whose diversity loss reads the code use q_bar of
the whole batch), for plain VQ, and for VQ with EMA updates, k-means init and dead-code restarts
(batch statistics outside the gradient: all-reduced, gathered, and rank 0's draws broadcast; rank
1's global generator is seeded apart, so it must take rank 0's), and for a two-level stack with its prior. A checkpoint written at world size 2 resumes at world size 1
and one written at world size 1 resumes at world size 2, both to the uninterrupted result.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.ddp_support import helper as ddp_helper
from tests.ddp_support import amae_renders, max_difference, reproduced_on_two_ranks_and_one, shared_run, skip_on_windows

from etude.runtime import load_checkpoint

ATOL = 1e-6
pytestmark = skip_on_windows


@pytest.fixture(scope="module")
def ddp_run():
    """The shared 2-rank launch's amae folder, the helper, initial states, one-process runs and restarts."""
    helper = ddp_helper("amae")
    work = shared_run() / "amae"
    runs, initial, moved = helper.oracle(work)
    return helper, work, initial, runs, moved


def test_the_remedies_really_acted_in_the_compared_run(ddp_run):
    _, _, initial, oracle, moved = ddp_run
    state = oracle["vq_ema_restart"][0]
    assert moved > 0, "no dead code restarted: the run does not test the broadcast restarts"
    assert bool(state["quantizer.initialized"])  # k-means ran on the first (global) batch
    assert not torch.equal(state["quantizer.ema_count"], initial["vq_ema_restart"]["quantizer.ema_count"])


def test_checkpoint_of_two_ranks_resumes_in_one_process(ddp_run):
    helper, work, _, oracle, _ = ddp_run
    assert load_checkpoint(work / "b.pt")["step"] == helper.STOP  # rank 0 wrote it, interrupted after STOP steps
    level, curve = helper.train(checkpoint=work / "b.pt", resume=True)
    assert max_difference(level.state_dict(), oracle["amae"][0]) < ATOL
    assert curve == pytest.approx(oracle["amae"][1], abs=1e-5)


def test_checkpoint_of_one_process_resumes_on_two_ranks(ddp_run):
    _, work, _, oracle, _ = ddp_run
    for r in (0, 1):
        state = load_checkpoint(work / f"c_rank{r}.pt")
        assert max_difference(state["state"], oracle["amae"][0]) < ATOL
        assert state["curve"] == pytest.approx(oracle["amae"][1], abs=1e-5)


def test_reproduce_on_two_ranks_matches_one_process_and_rank_one_writes_nothing():
    if not amae_renders():
        pytest.skip("needs fluidsynth and a GM soundfont (the study renders Bach)")
    files = {"result.json", "hierarchy.pt", "level0.pt", "vq_ema_restart.pt"}
    # the one-process run went first (before the shared launch): it rendered the pieces into the cache
    two, one = reproduced_on_two_ranks_and_one("amae", files)
    for key in ("wavenet", "vq", "vq_ema_restart", "level0", "level1"):
        assert two["metrics"][key]["nll_bits"] == pytest.approx(one["metrics"][key]["nll_bits"], abs=1e-5), key
    assert two["metrics"]["prior_bits_per_code"] == pytest.approx(one["metrics"]["prior_bits_per_code"], abs=1e-5)
