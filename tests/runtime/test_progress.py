"""progress: a tqdm bar on stderr, hidden by ETUDE_PROGRESS=0, non-zero ranks or disable=True."""

from __future__ import annotations

import pytest

from etude.errors import BadInputError
from etude.runtime import progress


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ETUDE_PROGRESS", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)


def test_shown_bar_writes_to_stderr_and_yields_items(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress(range(4), desc="epochs", disable=False)
    assert not bar.disable
    assert list(bar) == [0, 1, 2, 3]
    bar.close()
    captured = capsys.readouterr()
    assert "epochs" in captured.err and "4/4" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("env", "disable"),
    [
        ({"ETUDE_PROGRESS": "0"}, False),
        ({"ETUDE_PROGRESS": "off"}, False),
        ({"RANK": "1"}, False),
        ({"LOCAL_RANK": "3"}, False),
        ({}, True),
    ],
)
def test_hidden(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict, disable: bool
) -> None:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    bar = progress(range(3), desc="steps", disable=disable)
    assert bar.disable
    assert list(bar) == [0, 1, 2]
    bar.close()
    assert capsys.readouterr().err == ""


def test_rank_zero_env_keeps_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("ETUDE_PROGRESS", "1")
    with progress(total=5, desc="manual", disable=False) as bar:
        bar.update(5)
        assert not bar.disable and bar.n == 5


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"total": -1}, "total"), ({"disable": "no"}, "disable")]
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        progress(range(2), **kwargs)


@pytest.mark.parametrize(("group_rank", "hidden"), [(1, True), (0, False)])
def test_a_process_group_rank_decides_without_the_environment(
    monkeypatch: pytest.MonkeyPatch, group_rank: int, hidden: bool
) -> None:
    """Under `fabric run` on a later node RANK may be unset: the initialized process group's rank still hides it."""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: group_rank)
    bar = progress(range(2), desc="steps", disable=False)
    assert bar.disable is hidden
    bar.close()
