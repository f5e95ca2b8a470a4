"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest
import torch


_LAUNCH = {"shared_run", "reproduced_on_two_ranks_and_one"}
"""The names in ``tests.ddp_support`` that start (or read) the one shared 2-rank launch."""


def _uses_shared_launch(item) -> bool:
    if "ddp_run" in getattr(item, "fixturenames", ()):
        return True
    code = getattr(getattr(item, "function", None), "__code__", None)
    return code is not None and bool(_LAUNCH & set(code.co_names))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Groups for pytest-xdist's ``--dist loadgroup`` (``make test``): the tests that read the one shared
    2-rank launch (``tests.ddp_support.shared_run``, cached per process) share one worker, so it runs once;
    every other test stays with its file's group, so a module-scoped run happens once."""
    for item in items:
        group = "ddp" if _uses_shared_launch(item) else item.path.relative_to(config.rootpath).as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test, restored afterwards: on the shared 2-core machines two threads made
    the tiny models of these tests up to ~10x slower, and every study runs with one thread too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
