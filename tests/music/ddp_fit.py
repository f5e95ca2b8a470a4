"""transformer_ae's part of the shared 2-rank launch (``ddp_support.shared_run``): ``fit`` under DDP.

``prepare`` writes ``setup.pt`` (crops of the first 4 Bach chorales, the model's sizes and its initial
weights) and ``c.pt`` (one process, interrupted after ``STOP`` steps). In the launch each rank, from the
same initial weights:

* A: trains ``STEPS`` steps and saves its parameters and losses to ``a_rank<r>.pt``;
* B: trains again but is interrupted after ``STOP`` steps, leaving rank 0's checkpoint ``b.pt``;
* C: resumes ``c.pt`` (written by the test in one process, interrupted) and saves ``c_rank<r>.pt``;
* D: with dropout 0.1, trains whole and interrupted-then-resumed (``d.pt``), saving both results and
  a draw of the global torch generator after training to ``d_rank<r>.pt``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from tests.ddp_support import Stop, assert_equal_states, dying, save_rank

STEPS, STOP, EVERY = 6, 4, 2
BATCH, LR, SEED = 4, 3e-3, 5
PIECES = 4  # the music tests' session corpus (tests/music/conftest.py's SUBSET)
CASES = ("fit",)
ATOL = 1e-6
KEY_BIAS_ATOL = 3e-4


def build(work: Path, dropout: float = 0.0):
    """The model at its initial weights (and ``dropout``) and the crops, from ``work/setup.pt``."""
    from etude.music import TransformerAutoencoder, TransformerConfig
    from etude.music.crops import Crops
    from etude.runtime import load_checkpoint

    setup = load_checkpoint(work / "setup.pt")
    cfg = TransformerConfig(**{**setup["config"], "dropout": dropout})
    model = TransformerAutoencoder(cfg, setup["conditioning"], encoder_layers=1)
    model.load_state_dict(setup["model"])
    return model, Crops(setup["performance"], setup["melody"])


def train(work: Path, fabric=None, *, checkpoint=None, resume=False, stop=None, dropout=0.0):
    """``fit`` with the helper's settings; returns (model, losses), or (model, None) when interrupted."""
    from etude.music.training import fit

    model, data = build(work, dropout)
    data.select = dying(data.select, stop)  # one call per training step
    try:
        losses = fit(model, data, steps=STEPS, batch_size=BATCH, lr=LR,
                     seed=SEED, checkpoint=checkpoint, resume=resume, every=EVERY, show_progress=False, fabric=fabric)
    except Stop:
        return model, None
    return model, losses


def main(fabric, work: Path) -> None:
    model, losses = train(work, fabric)
    save_rank(fabric, work, "a", {"params": model.state_dict(), "losses": losses, "world_size": fabric.world_size})
    train(work, fabric, checkpoint=work / "b.pt", stop=STOP)
    fabric.barrier()
    model, losses = train(work, fabric, checkpoint=work / "c.pt", resume=True)
    save_rank(fabric, work, "c", {"params": model.state_dict(), "losses": losses})
    whole, _ = train(work, fabric, dropout=0.1)
    draw = torch.rand(4)  # the global generator, which drew this rank's dropout masks
    train(work, fabric, checkpoint=work / "d.pt", stop=STOP, dropout=0.1)
    fabric.barrier()
    resumed, _ = train(work, fabric, checkpoint=work / "d.pt", resume=True, dropout=0.1)
    save_rank(fabric, work, "d", {"whole": whole.state_dict(), "resumed": resumed.state_dict(), "draw": draw})



def prepare(work: Path) -> None:
    from etude.music import TransformerAutoencoder, TransformerConfig, load_corpus, make_crops
    from etude.runtime import save_checkpoint

    bach = load_corpus("bach", limit=PIECES, cache=work / "cache", show_progress=False)
    crops = make_crops(bach.pieces, seconds=1.0, max_tokens=24, per_piece=3, seed=0)
    cfg = TransformerConfig(dim=16, heads=2, layers=1, ff=32, max_len=24, dropout=0.0)
    torch.manual_seed(0)
    model = TransformerAutoencoder(cfg, "performance", encoder_layers=1)
    save_checkpoint(work / "setup.pt", {"config": cfg.as_dict(), "conditioning": "performance",
                                        "model": model.state_dict(), "performance": crops.performance,
                                        "melody": crops.melody})
    assert train(work, checkpoint=work / "c.pt", stop=STOP)[1] is None  # 1 process, interrupted


@functools.cache
def oracle(work: Path) -> tuple[dict, dict, list[float]]:
    """The initial weights, and the parameters and losses of ``fit`` in one process."""
    from etude.runtime import load_checkpoint

    model, losses = train(work)
    return load_checkpoint(work / "setup.pt")["model"], model.state_dict(), losses


def assert_close(found: dict, expected: dict) -> None:
    """Equal to ATOL, except the key biases (first half of each ``kv.bias``), to KEY_BIAS_ATOL.

    Softmax ignores a shift shared by a query's scores, so the key bias's gradient is zero in exact
    arithmetic; Adam divides its float rounding noise (~1e-9) by its own size and steps on it.
    """
    for name, value in expected.items():
        got = found[name]
        if name.endswith("kv.bias"):
            half = value.shape[0] // 2
            assert torch.allclose(got[:half], value[:half], rtol=0, atol=KEY_BIAS_ATOL), name
            got, value = got[half:], value[half:]
        assert torch.allclose(got, value, rtol=0, atol=ATOL), (name, (got - value).abs().max())


def check(work: Path, case: str) -> None:
    from etude.runtime import load_checkpoint

    initial, params, losses = oracle(work)
    ranks = [load_checkpoint(work / f"a_rank{r}.pt", expect={"world_size": 2}) for r in (0, 1)]
    assert_equal_states(ranks[1]["params"], ranks[0]["params"])
    assert_close(ranks[0]["params"], params)
    assert max((params[n] - initial[n]).abs().max().item() for n in params) > 1e-3, "training barely moved"
    assert ranks[0]["losses"] == pytest.approx(losses, abs=1e-5) and ranks[1]["losses"] == ranks[0]["losses"]
