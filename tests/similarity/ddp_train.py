"""Helper for test_similarity_ddp.py: ``etude.similarity.digits.train_mlp`` under 2-rank CPU DDP (gloo).

Run as ``python ddp_train.py WORK_DIR``. ``WORK_DIR/setup.pt`` (written by the test) holds the training
inputs and labels. Fabric's ``ddp`` launcher re-runs this script for rank 1. Each rank then trains, for
each architecture in ``ARCHS`` (an MLP and a CNN, both seeded by ``SEED``):

* A: ``EPOCHS`` epochs of minibatches of ``BATCH`` (the epoch's last one has an odd size, so the two
  ranks' shards differ in size), saving its weights and snapshots to ``a_<arch>_rank<r>.pt``;
* B: the same with a checkpoint ``b_<arch>.pt`` (only rank 0 writes it), for the test to resume in one process;
* C: resumes ``c_<arch>.pt`` (written by the test in one process) and saves the weights to ``c_<arch>_rank<r>.pt``.
"""

from __future__ import annotations

from pathlib import Path

from ddp_support import on_two_ranks, save_rank

ARCHS = {"mlp": [8, 8], "cnn": [3, 3]}
EPOCHS, BATCH, LR, SEED, SNAPSHOTS = 3, 64, 1e-2, 11, (1, 2)


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


if __name__ == "__main__":
    on_two_ranks(main)
