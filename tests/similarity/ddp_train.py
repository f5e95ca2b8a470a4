"""pwcca's part of the shared 2-rank launch (``ddp_support.shared_run``): ``train_mlp`` under DDP.

``prepare`` writes ``setup.pt`` (the training inputs and labels) and, per architecture, a finished
one-process checkpoint ``c_<arch>.pt`` whose weights are marked (+``MARK``) so that loading it shows. In the
launch each rank trains, for each architecture in ``ARCHS`` (an MLP and a CNN, both seeded by ``SEED``):

* A: ``EPOCHS`` epochs of minibatches of ``BATCH`` (the epoch's last one has an odd size, so the two
  ranks' shards differ in size), saving its weights and snapshots to ``a_<arch>_rank<r>.pt``;
* B: the same with a checkpoint ``b_<arch>.pt`` (only rank 0 writes it), for the test to resume in one process;
* C: resumes ``c_<arch>.pt`` (written by the test in one process) and saves the weights to ``c_<arch>_rank<r>.pt``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from tests.ddp_support import assert_equal_states, max_difference, save_rank

ARCHS = {"mlp": [8, 8], "cnn": [3, 3]}
EPOCHS, BATCH, LR, SEED, SNAPSHOTS = 3, 64, 1e-2, 11, (1, 2)
N_TRAIN = 201  # minibatches of 64, 64, 64 and 9: the last splits 5 + 4 over the two ranks
MARK, ATOL = 0.5, 1e-6
CASES = tuple(ARCHS)


def train(work: Path, arch: str, fabric=None, *, checkpoint=None, resume=False):
    """``train_mlp`` with the helper's settings on ``work/setup.pt``'s data; returns the TrainedNet."""
    from etude.runtime import load_checkpoint
    from etude.similarity.digits import train_mlp

    setup = load_checkpoint(work / "setup.pt")
    return train_mlp(ARCHS[arch], setup["x"], setup["y"], seed=SEED, epochs=EPOCHS, lr=LR, batch_size=BATCH,
                     snapshots=SNAPSHOTS, checkpoint=checkpoint, resume=resume, arch=arch, fabric=fabric)


def main(fabric, work: Path) -> None:
    for arch in ARCHS:
        net = train(work, arch, fabric)
        state = {"params": net.model.state_dict(), "snapshots": net.snapshots, "world_size": fabric.world_size}
        save_rank(fabric, work, f"a_{arch}", state)
        train(work, arch, fabric, checkpoint=work / f"b_{arch}.pt")
        net = train(work, arch, fabric, checkpoint=work / f"c_{arch}.pt", resume=True)
        save_rank(fabric, work, f"c_{arch}", {"params": net.model.state_dict()})



def prepare(work: Path) -> None:
    from etude.runtime import load_checkpoint, save_checkpoint
    from etude.similarity.digits import load_digits_split

    data = load_digits_split(0.2, seed=0)
    save_checkpoint(work / "setup.pt", {"x": data.x_train[:N_TRAIN], "y": data.y_train[:N_TRAIN]})
    for arch in ARCHS:  # a finished one-process checkpoint, marked so that loading it shows
        train(work, arch, checkpoint=work / f"c_{arch}.pt")
        state = load_checkpoint(work / f"c_{arch}.pt")
        state["model"] = {k: v + MARK for k, v in state["model"].items()}
        save_checkpoint(work / f"c_{arch}.pt", state)


@functools.cache
def oracle(work: Path) -> dict:
    """Each architecture's network trained in one process (a TrainedNet)."""
    return {arch: train(work, arch) for arch in ARCHS}


def check(work: Path, arch: str) -> None:
    from etude.runtime import load_checkpoint
    from etude.similarity.digits import make_net

    ranks = [load_checkpoint(work / f"a_{arch}_rank{r}.pt", expect={"world_size": 2}) for r in (0, 1)]
    net = oracle(work)[arch]
    expected = net.model.state_dict()
    assert_equal_states(ranks[1]["params"], ranks[0]["params"])
    assert max_difference(ranks[0]["params"], expected) <= ATOL
    for epoch in SNAPSHOTS:
        assert max_difference(ranks[0]["snapshots"][epoch], net.snapshots[epoch]) <= ATOL
    initial = make_net(arch, ARCHS[arch], SEED).state_dict()
    assert max_difference(expected, initial) > 1e-2, "training barely moved"
