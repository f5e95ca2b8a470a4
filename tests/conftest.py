"""Fixtures shared by every test folder."""

from __future__ import annotations

import uuid

import pytest
import torch


def pytest_configure(config):
    """Under pytest-xdist the controller names the test run itself (``--testrunuid``), so that it can remove
    the 2-rank launch its workers shared (``tests.ddp_support.shared_run``) when the session ends."""
    if not hasattr(config, "workerinput") and getattr(config.option, "testrunuid", "absent") is None:
        config.option.testrunuid = uuid.uuid4().hex


def pytest_sessionfinish(session):
    run = getattr(session.config.option, "testrunuid", None)
    if run and not hasattr(session.config, "workerinput"):
        from tests.ddp_support import remove_shared

        remove_shared(run)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test, restored afterwards: on the shared 2-core machines two threads made
    the tiny models of these tests up to ~10x slower, and every study runs with one thread too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
