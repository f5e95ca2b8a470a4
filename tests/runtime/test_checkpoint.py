"""Checkpoints: round trip, atomic replacement, corrupt files and run mismatches."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from etude.errors import BadInputError, CheckpointError, EtudeError
from etude.runtime import latest_checkpoint, load_checkpoint, save_checkpoint


def _state(generator: torch.Generator) -> dict[str, Any]:
    """A state with every kind of value the studies store."""
    return {
        "kind": "lola",
        "config": {"lr": 0.1, "steps": 10, "sizes": [2, 3], "name": "ipd"},
        "step": 3,
        "params": {"w": torch.randn(2, 3, generator=generator), "b": torch.zeros(3)},
        "history": [1.0, 0.5, 0.25],
        "generator": generator.get_state(),
    }


def _assert_intact_old(path: Path) -> None:
    """``path`` holds the first checkpoint and is the only file in its folder."""
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_round_trip_restores_values_and_generator(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(11)
    state = _state(generator)
    path = tmp_path / "nested" / "dir" / "ckpt.pt"
    save_checkpoint(path, state)
    expected_next = torch.rand(5, generator=generator)  # draws after the save

    loaded = load_checkpoint(path)
    assert loaded.keys() == state.keys()
    assert loaded["config"] == state["config"] and loaded["history"] == state["history"]
    assert torch.equal(loaded["params"]["w"], state["params"]["w"])
    restored = torch.Generator()
    restored.set_state(loaded["generator"])
    assert torch.equal(torch.rand(5, generator=restored), expected_next)


def _crash_on_replace(src: Any, dst: Any) -> None:
    raise OSError("simulated crash during rename")


class _HalfWrite:
    """A file handle that writes half of what it is given to the real file, then fails (a full disk, a kill)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, data: bytes) -> int:
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError("simulated crash during write")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> _HalfWrite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def _crash_mid_write(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    """``open`` as etude.runtime.files sees it: bytes reach the disk, then the write fails half way."""
    return _HalfWrite(open(file, mode, *args, **kwargs))


@pytest.mark.parametrize("fake", ["replace", "write"], ids=["rename", "write"])
def test_crash_keeps_old_checkpoint_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: str
) -> None:
    """A crash while the new file is written (half its bytes on disk) or renamed leaves the old checkpoint
    whole and no temporary file: a non-atomic write (straight to the target) fails this test."""
    import etude.runtime.files as files

    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"step": 1})
    if fake == "replace":
        monkeypatch.setattr(os, "replace", _crash_on_replace)
    else:
        monkeypatch.setattr(files, "open", _crash_mid_write, raising=False)  # shadows the builtin in files.py
    with pytest.raises((OSError, EtudeError), match="simulated crash"):
        save_checkpoint(path, {"step": 2, "payload": torch.zeros(1000)})
    monkeypatch.undo()
    _assert_intact_old(path)


def test_save_replaces_existing(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_save_rejects_non_dict(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="state must be a dict"):
        save_checkpoint(tmp_path / "x.pt", [1, 2])  # type: ignore[arg-type]


class _Sneaky(dict):
    """A dict subclass outside torch's weights_only allowlist (an arbitrary pickled class)."""


def _write_corrupt(path: Path, kind: str) -> None:
    """Write one kind of damaged or foreign file at ``path``."""
    if kind == "random":
        path.write_bytes(
            torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
            .numpy()
            .tobytes()
        )
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        save_checkpoint(path, {"w": torch.randn(64, 64), "step": 5})
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "unsafe":  # a dict subclass weights_only=True must refuse to unpickle
        torch.save(_Sneaky(a=1), path)


@pytest.mark.parametrize("kind", ["random", "empty", "truncated", "list", "unsafe", "missing"])
def test_corrupt_or_missing_raises_one_line_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "ckpt.pt"
    if kind != "missing":
        _write_corrupt(path, kind)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert "--resume" in message
    assert ("missing" if kind == "missing" else "corrupt") in message


@pytest.mark.parametrize(
    ("expect", "where"),
    [
        ({"kind": "qmc"}, "kind differs"),
        ({"config": {"lr": 0.2, "steps": 10, "sizes": [2, 3], "name": "ipd"}}, "config.lr differs"),
        ({"config": {"lr": 0.1, "steps": 10, "sizes": [2, 4], "name": "ipd"}}, r"s\[1\] differs"),
        ({"config": {"lr": 0.1, "steps": 10, "sizes": [2, 3]}}, "config.name differs"),
        ({"seed": 0}, "no key 'seed'"),
        ({"history": [1.0, 0.5]}, "history differs"),
    ],
)
def test_expect_mismatch_raises(tmp_path: Path, expect: dict[str, Any], where: str) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, _state(torch.Generator().manual_seed(0)))
    with pytest.raises(CheckpointError, match=where) as info:
        load_checkpoint(path, expect=expect)
    assert "another run" in str(info.value) and "\n" not in str(info.value)


def test_expect_match_passes(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    state = _state(torch.Generator().manual_seed(0))
    save_checkpoint(path, state)
    expect = {"kind": "lola", "config": dict(state["config"], sizes=(2, 3)), "step": 3.0, "params": state["params"]}
    assert load_checkpoint(path, expect=expect)["step"] == 3


def test_expect_tensor_mismatch_raises(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"w": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="w differs"):
        load_checkpoint(path, expect={"w": torch.tensor([0.0, 1e-3])})


def test_latest_checkpoint(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path / "absent") is None
    assert latest_checkpoint(tmp_path) is None
    for i, name in enumerate(["step_10.pt", "step_30.pt", "step_20.pt", "notes.txt"]):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
    (tmp_path / ".step_40.pt.abc.tmp").write_bytes(b"x")  # left by a crashed save
    assert latest_checkpoint(tmp_path) == tmp_path / "step_20.pt"
    assert latest_checkpoint(tmp_path, "*.txt") == tmp_path / "notes.txt"


# Integrity: a content hash, finiteness, and shapes checked against the run.


def _flip(path: Path, offset_from_end: int) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_tensor_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    weights = torch.arange(4096, dtype=torch.float32)
    save_checkpoint(path, {"w": weights, "step": 3})
    raw = path.read_bytes()
    start = raw.index(weights.numpy().tobytes()[:64])  # the tensor's bytes sit uncompressed in torch's zip
    data = bytearray(raw)
    data[start + 1000] ^= 0x01
    path.write_bytes(bytes(data))
    # torch alone would load it silently with a changed parameter
    head, _, payload = bytes(data).partition(b"\n")
    import io

    altered = torch.load(io.BytesIO(payload), weights_only=True)["w"]
    assert not torch.equal(altered, weights)
    with pytest.raises(CheckpointError, match="content hash does not match") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("where", [1, 200, "header"])
def test_any_altered_byte_is_refused(tmp_path: Path, where) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"w": torch.randn(32, 32, generator=torch.Generator().manual_seed(0)), "step": 3})
    if where == "header":
        data = bytearray(path.read_bytes())
        data[30] = ord("0") if data[30] != ord("0") else ord("1")
        path.write_bytes(bytes(data))
    else:
        _flip(path, where)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_files_without_a_hash_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"step": 1}, path)  # a valid torch file, but not an etude checkpoint
    with pytest.raises(CheckpointError, match="no content hash"):
        load_checkpoint(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_tensors_are_refused(tmp_path: Path, value: float) -> None:
    path = tmp_path / "ckpt.pt"
    w = torch.zeros(3)
    w[1] = value
    save_checkpoint(path, {"model": {"layer.weight": w}, "ids": torch.arange(3)})
    with pytest.raises(CheckpointError, match=r"NaN or infinite values in model\.layer\.weight"):
        load_checkpoint(path)


def test_like_checks_keys_shapes_and_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    model = torch.nn.Linear(3, 2)
    save_checkpoint(path, {"model": model.state_dict(), "step": 4})
    assert load_checkpoint(path, like={"model": model.state_dict(), "step": int})["step"] == 4
    cases = [
        ({"model": torch.nn.Linear(4, 2).state_dict()}, r"model\.weight has shape \(2, 3\)"),
        ({"model": torch.nn.Linear(3, 2).double().state_dict()}, "dtype torch.float32"),
        ({"model": torch.nn.Linear(3, 2, bias=False).state_dict()}, "unexpected"),
        ({"model": torch.nn.Sequential(torch.nn.Linear(3, 2)).state_dict()}, "lacks"),
        ({"step": str}, "step is a int, expected a str"),
        ({"optimizer": {}}, "optimizer is missing"),
    ]
    for like, message in cases:
        with pytest.raises(CheckpointError, match=message) as info:
            load_checkpoint(path, like=like)
        assert str(path) in str(info.value) and "does not fit this run" in str(info.value)


def test_concurrent_saves_never_share_a_temp_file(tmp_path: Path) -> None:
    import threading

    path, errors = tmp_path / "ckpt.pt", []

    def writer(k: int) -> None:
        for i in range(25):
            try:
                save_checkpoint(path, {"writer": k, "i": i, "w": torch.full((64,), float(k))})
            except Exception as exc:  # noqa: BLE001 - any failure is the defect under test
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    state = load_checkpoint(path)
    assert torch.equal(state["w"], torch.full((64,), float(state["writer"])))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


# --- a valid hash over the wrong content: the whole state is checked against a freshly built one -----


def _fresh_run() -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Generator]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()  # a stepped optimizer has per-parameter state (exp_avg, exp_avg_sq, step)
    return model, optimizer, torch.Generator().manual_seed(1)


def _run_state(model, optimizer, generator) -> dict[str, Any]:
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sampler": generator.get_state(),
        "step": 5,
    }


def _like(model, optimizer, generator) -> dict[str, Any]:
    return {"model": model.state_dict(), "optimizer": optimizer, "sampler": generator, "step": int}


def _spoil(state: dict[str, Any], kind: str) -> None:
    """Change ``state`` as a hostile or damaged checkpoint would, keeping it loadable by torch."""
    if kind == "generator 3 bytes":
        state["sampler"] = torch.tensor([1, 2, 3], dtype=torch.uint8)
    elif kind == "generator a float tensor":
        state["sampler"] = state["sampler"].float()
    elif kind == "generator missing":
        del state["sampler"]
    elif kind == "counter a string":
        state["step"] = "5"
    elif kind == "counter a bool":
        state["step"] = True
    elif kind == "value a string":
        state["model"] = "weights"
    elif kind == "parameter int64":
        state["model"]["weight"] = state["model"]["weight"].long()
    elif kind == "parameter 1e308":
        state["model"]["weight"] = torch.full((2, 3), 1e308, dtype=torch.float64)
    elif kind == "parameter shape":
        state["model"]["bias"] = torch.zeros(3)
    elif kind == "optimizer moment shape":
        state["optimizer"]["state"][0]["exp_avg"] = torch.zeros(5)
    elif kind == "optimizer moment dtype":
        state["optimizer"]["state"][1]["exp_avg_sq"] = state["optimizer"]["state"][1]["exp_avg_sq"].double()
    elif kind == "optimizer step a string":
        state["optimizer"]["state"][0]["step"] = "1"
    elif kind == "optimizer groups":
        state["optimizer"]["param_groups"].append(dict(state["optimizer"]["param_groups"][0]))
    elif kind == "optimizer lr a string":
        state["optimizer"]["param_groups"][0]["lr"] = "0.01"
    elif kind == "optimizer unknown parameter":
        state["optimizer"]["state"][7] = {}
    elif kind == "optimizer a list":
        state["optimizer"] = [1, 2]
    else:  # pragma: no cover - a typo in the parametrization
        raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("generator 3 bytes", "sampler has shape (3,) and dtype torch.uint8"),
        ("generator a float tensor", "sampler has shape (5056,) and dtype torch.float32"),
        ("generator missing", "sampler is missing"),
        ("counter a string", "step is a str, expected a int"),
        ("counter a bool", "step is a bool, expected a int"),
        ("value a string", "model is a str, expected a dict"),
        ("parameter int64", "model.weight has shape (2, 3) and dtype torch.int64"),
        ("parameter 1e308", "model.weight has shape (2, 3) and dtype torch.float64"),
        ("parameter shape", "model.bias has shape (3,)"),
        ("optimizer moment shape", "optimizer.state.0.exp_avg has shape (5,)"),
        ("optimizer moment dtype", "optimizer.state.1.exp_avg_sq has shape (2,) and dtype torch.float64"),
        ("optimizer step a string", "optimizer.state.0.step is a str, expected a step count"),
        ("optimizer groups", "optimizer.param_groups holds"),
        ("optimizer lr a string", "optimizer.param_groups[0].lr is a str, expected a float"),
        ("optimizer unknown parameter", "optimizer.state has an entry for parameter 7"),
        ("optimizer a list", "optimizer is a list, expected an optimizer state"),
    ],
)
def test_wrong_content_under_a_valid_hash_is_refused_naming_file_and_field(
    tmp_path: Path, kind: str, field: str
) -> None:
    model, optimizer, generator = _fresh_run()
    state = _run_state(model, optimizer, generator)
    path = tmp_path / "run.pt"
    save_checkpoint(path, state)
    load_checkpoint(path, like=_like(model, optimizer, generator))  # the intact state fits
    _spoil(state, kind)
    save_checkpoint(path, state)  # a valid hash over the wrong content
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(path, like=_like(*_fresh_run()))
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and "does not fit this run" in message, message
    assert field in message, message


def test_a_state_that_fits_loads_into_the_fresh_run_and_continues_it(tmp_path: Path) -> None:
    model, optimizer, generator = _fresh_run()
    path = tmp_path / "run.pt"
    save_checkpoint(path, _run_state(model, optimizer, generator))
    expected = torch.rand(3, generator=generator)
    fresh_model, fresh_optimizer, fresh_generator = _fresh_run()
    state = load_checkpoint(path, like=_like(fresh_model, fresh_optimizer, fresh_generator))
    fresh_model.load_state_dict(state["model"])
    fresh_optimizer.load_state_dict(state["optimizer"])
    fresh_generator.set_state(state["sampler"])
    assert torch.equal(torch.rand(3, generator=fresh_generator), expected)


def test_like_with_lists_checks_length_and_items(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"theta": [torch.zeros(2), torch.zeros(3)]})
    load_checkpoint(path, like={"theta": [torch.zeros(2), torch.zeros(3)]})
    with pytest.raises(CheckpointError, match=r"theta holds 2 items, expected 3"):
        load_checkpoint(path, like={"theta": [torch.zeros(2)] * 3})
    with pytest.raises(CheckpointError, match=r"theta\[1\] has shape \(3,\)"):
        load_checkpoint(path, like={"theta": [torch.zeros(2), torch.zeros(4)]})
