"""make_fabric validates its arguments and picks the CPU without a GPU; teardown cleans up."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist

from etude.errors import BadInputError
from etude.runtime import make_fabric, teardown


HAS_GPU = torch.cuda.is_available() or torch.backends.mps.is_available()


@pytest.mark.skipif(HAS_GPU, reason="needs a machine without a GPU")
def test_auto_picks_cpu_without_gpu() -> None:
    fabric = make_fabric()
    assert fabric.device.type == "cpu"
    assert fabric.world_size == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"accelerator": "abacus"}, "accelerator"),
        ({"strategy": "telepathy"}, "strategy"),
        ({"precision": "8-true"}, "precision"),
        ({"devices": 0}, "devices"),
        ({"devices": 1.5}, "devices"),
        ({"devices": ""}, "devices"),
        ({"num_nodes": 0}, "num_nodes"),
        ({"loggers": ["not a logger"]}, "loggers"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        make_fabric(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_accelerator_raises_bad_input() -> None:
    with pytest.raises(BadInputError, match="accelerator='cuda'"):
        make_fabric(accelerator="cuda")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_teardown_destroys_process_group() -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    assert dist.is_initialized()
    teardown()
    assert not dist.is_initialized()
    teardown(make_fabric(accelerator="cpu"))  # no group: nothing to do, no error
