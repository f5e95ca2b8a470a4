"""Distributed settings, ranks with and without a process group, batch shards, and the CLI's options."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist

from etude.cli import main
from etude.errors import BadInputError, CheckpointError
from etude.runtime import (Distributed, fabric_run_settings, is_rank_zero, load_on_rank_zero, rank, save_checkpoint,
                           shard, sum_over_ranks, teardown, world_size)


class FakeFabric:
    """The two attributes ``shard`` reads, for ranks this process is not."""

    def __init__(self, global_rank: int, world_size: int) -> None:
        self.global_rank, self.world_size = global_rank, world_size


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_shards_are_contiguous_equal_and_cover_the_global_batch(ranks):
    index = torch.randperm(12, generator=torch.Generator().manual_seed(ranks))
    parts = [shard(index, FakeFabric(r, ranks)) for r in range(ranks)]
    assert all(len(p) == 12 // ranks for p in parts)
    assert torch.equal(torch.cat(parts), index)  # in rank order, the global batch itself


@pytest.mark.parametrize("size", [0, 1, 5, 9, 12])
def test_uneven_shards_split_any_global_batch_in_rank_order(size, ranks=4):
    index = torch.randperm(size, generator=torch.Generator().manual_seed(size))
    parts = [shard(index, FakeFabric(r, ranks), uneven=True) for r in range(ranks)]
    assert torch.equal(torch.cat(parts), index)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_a_global_batch_not_divisible_by_the_world_size_is_a_clear_error():
    with pytest.raises(BadInputError, match="global batch size 10 must be divisible by the world size 4"):
        shard(torch.arange(10), FakeFabric(0, 4))


@pytest.fixture(autouse=True)
def _no_launcher_env(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LT_CLI_USED", "LT_DEVICES", "LT_STRATEGY", "LT_NUM_NODES"):
        monkeypatch.delenv(name, raising=False)


def test_rank_without_a_process_group_reads_torchrun_or_fabric_env(monkeypatch):
    assert (rank(), world_size(), is_rank_zero()) == (0, 1, True)
    monkeypatch.setenv("LOCAL_RANK", "1")  # a rank Fabric's launcher started
    assert rank() == 1 and not is_rank_zero()
    monkeypatch.setenv("RANK", "3")  # torchrun sets both; the global one wins
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert (rank(), world_size(), is_rank_zero()) == (3, 4, False)
    assert (rank(FakeFabric(0, 2)), world_size(FakeFabric(0, 2))) == (0, 2)  # a fabric's answer comes first


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_rank_with_a_process_group_is_the_groups(monkeypatch):
    monkeypatch.setenv("RANK", "5")  # stale environment: the process group is the truth
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        assert (rank(), world_size(), is_rank_zero()) == (0, 1, True)
    finally:
        teardown()


def test_sum_over_ranks_of_one_process_is_the_value():
    value = torch.tensor(2.5)
    assert sum_over_ranks(value, None) is value
    assert sum_over_ranks(value, FakeFabric(0, 1)) is value


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"devices": 0}, "devices"), ({"strategy": "nonsense"}, "strategy"), ({"precision": "8-bit"}, "precision"),
    ({"num_nodes": 0}, "num_nodes"), ({"accelerator": "abacus"}, "accelerator"),
    ({"devices": 2}, "needs a strategy"), ({"num_nodes": 2}, "needs a strategy"),
])
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(BadInputError, match=match):
        Distributed(**kwargs)


def test_settings_build_a_fabric_with_them():
    fabric = Distributed(accelerator="cpu", precision="bf16-mixed").make_fabric()
    assert fabric.device.type == "cpu" and fabric.world_size == 1
    assert fabric.strategy.precision.precision == "bf16-mixed"


@pytest.mark.parametrize(("options", "match"), [
    (["--devices", "0"], "devices must be a positive int"),
    (["--strategy", "nonsense"], "strategy must be one of"),
    (["--precision", "8-bit"], "precision must be one of"),
    (["--jobs", "2", "--strategy", "ddp", "--devices", "2"], "cannot be combined with --jobs 2"),
    (["--devices", "2"], "needs a strategy such as 'ddp'"),
])
def test_reproduce_refuses_bad_distributed_options_in_one_line(options, match, tmp_path, capsys):
    assert main(["reproduce", "transformer_ae", "--preset", "smoke", "--out", str(tmp_path), *options]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # refused before anything ran or was written


def test_distributed_options_name_the_studies_that_accept_them(tmp_path, capsys):
    assert main(["reproduce", "lola", "--preset", "smoke", "--out", str(tmp_path), "--strategy", "ddp"]) == 2
    err = capsys.readouterr().err
    assert "'lola' does not train through Fabric yet" in err
    named = err.split("apply to ")[1].strip().split(", ")
    assert {"transformer_ae", "pwcca", "bruno", "metavae", "amae"} <= set(named) and "lola" not in named


def test_a_torchrun_launch_without_a_strategy_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["reproduce", "transformer_ae", "--preset", "smoke", "--out", str(tmp_path)]) == 2
    assert "pass --strategy ddp" in capsys.readouterr().err


def test_fabric_run_settings_come_from_its_environment(monkeypatch):
    monkeypatch.setenv("LT_DEVICES", "2")
    assert fabric_run_settings() == {}  # not launched by `fabric run`
    monkeypatch.setenv("LT_CLI_USED", "1")
    monkeypatch.setenv("LT_STRATEGY", "ddp")
    monkeypatch.setenv("LT_NUM_NODES", "3")
    assert fabric_run_settings() == {"devices": 2, "strategy": "ddp", "num_nodes": 3}
    monkeypatch.setenv("LT_DEVICES", "0,1")
    with pytest.raises(BadInputError, match="LT_DEVICES='0,1'"):
        fabric_run_settings()


def test_load_on_rank_zero_reads_the_checkpoint_or_gives_none(tmp_path):
    assert load_on_rank_zero(tmp_path / "missing.pt") is None  # nothing to resume: start afresh
    save_checkpoint(tmp_path / "c.pt", {"kind": "k", "w": torch.arange(3)})
    assert torch.equal(load_on_rank_zero(tmp_path / "c.pt", expect={"kind": "k"})["w"], torch.arange(3))
    with pytest.raises(CheckpointError, match="from another run"):
        load_on_rank_zero(tmp_path / "c.pt", expect={"kind": "other"})
