"""pwcca's networks trained under 2-rank CPU DDP (gloo) equal one process on the global minibatches.

The oracle is ``train_mlp`` without a fabric (plain PyTorch, one process, every whole minibatch). Two
ranks, each on its share of every minibatch (the epoch's last one of odd size, so the shares differ),
end with the same weights and snapshots, for an MLP and a CNN (asserted by tests/runtime/test_ddp.py
on the shared launch, ``ddp_train.check``); a checkpoint written at world size 2 resumes at world size 1 and one written at world
size 1 resumes at world size 2. The study itself runs on 2 ranks from the CLI to the result of one process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.ddp_support import assert_equal_states, max_difference, reproduced_on_two_ranks_and_one, shared_run, skip_on_windows
from tests.ddp_support import helper as ddp_helper

from etude.runtime import load_checkpoint
from etude.similarity.digits import load_digits_split

ATOL = 1e-6
pytestmark = skip_on_windows


@pytest.fixture(scope="module")
def ddp_run():
    """The shared 2-rank launch's pwcca folder, the helper and its one-process oracle nets."""
    helper = ddp_helper("pwcca")
    work = shared_run() / "pwcca"
    return helper, work, helper.oracle(work)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_checkpoint_of_two_ranks_resumes_in_one_process(ddp_run, arch):
    helper, work, oracle = ddp_run
    stored = load_checkpoint(work / f"b_{arch}.pt")  # written by rank 0 alone
    assert max_difference(stored["model"], oracle[arch].model.state_dict()) <= ATOL
    resumed = helper.train(work, arch, checkpoint=work / f"b_{arch}.pt", resume=True)
    assert_equal_states(resumed.model.state_dict(), stored["model"])  # loaded, not trained again
    assert resumed.snapshots.keys() == oracle[arch].snapshots.keys()


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_checkpoint_of_one_process_resumes_on_two_ranks(ddp_run, arch):
    _, work, _ = ddp_run
    marked = load_checkpoint(work / f"c_{arch}.pt")["model"]
    for r in (0, 1):
        params = load_checkpoint(work / f"c_{arch}_rank{r}.pt")["params"]
        for name, value in marked.items():
            assert torch.equal(params[name], value), (r, name)


def test_bf16_mixed_trains_on_the_cpu():
    """A forward/backward smoke test at bf16-mixed through a one-device CPU Fabric (equality is checked at 32-true)."""
    from etude.runtime import Distributed
    from etude.similarity.digits import train_mlp

    data = load_digits_split(0.2, seed=0)
    x, y = data.x_train[:256], data.y_train[:256]
    fabric = Distributed(accelerator="cpu", precision="bf16-mixed").make_fabric()
    nets = {name: train_mlp([16, 8], x, y, seed=3, epochs=2, lr=1e-2, batch_size=64, fabric=f)
            for name, f in (("32-true", None), ("bf16-mixed", fabric))}
    weights = {name: net.model.state_dict() for name, net in nets.items()}
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights["bf16-mixed"].values())
    difference = max_difference(weights["bf16-mixed"], weights["32-true"])
    assert 0 < difference < 0.05  # bf16 rounding really happened, and trained the same network
    assert nets["bf16-mixed"].train_accuracy == pytest.approx(nets["32-true"].train_accuracy, abs=0.02)
    assert nets["bf16-mixed"].train_accuracy > 0.3  # chance is 0.1


def test_reproduce_on_two_ranks_matches_one_process_and_rank_one_writes_nothing():
    files = {"run.json", "result.json", "similarity_by_layer.png", "true_0.pt", "width8_untrained_1.pt"}
    two, one = reproduced_on_two_ranks_and_one("pwcca", files)
    for key in ("gen_test_accuracy", "mem_train_accuracy", "cnn_test_accuracy", "width_test_accuracy"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], abs=1e-9), key
    for label, groups in one["metrics"]["by_layer"].items():
        for group, values in groups.items():
            assert two["metrics"]["by_layer"][label][group] == pytest.approx(values, abs=1e-4), (label, group)
    assert [c["verdict"] for c in two["claims"]] == [c["verdict"] for c in one["claims"]]
