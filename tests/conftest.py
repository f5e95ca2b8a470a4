"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest
import torch


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Groups for pytest-xdist's ``--dist loadgroup`` (``make test``): a file's tests stay on one worker, so
    its module-scoped runs happen once, and the 2-rank DDP files (``test_ddp.py``) share one worker, so the
    one shared 2-rank launch (``tests.ddp_support.shared_run``, cached per process) runs once."""
    for item in items:
        path = item.path
        group = "ddp" if path.name == "test_ddp.py" else path.relative_to(config.rootpath).as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test, restored afterwards: on the shared 2-core machines two threads made
    the tiny models of these tests up to ~10x slower, and every study runs with one thread too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
