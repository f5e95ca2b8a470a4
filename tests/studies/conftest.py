"""Shared fixtures of the study-protocol tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from etude.studies import registry

_HERE = Path(__file__).resolve().parent


@pytest.fixture
def fake(monkeypatch):
    """The fake_studies module, its studies registered alongside the real ones, call logs emptied."""
    monkeypatch.syspath_prepend(str(_HERE))
    import fake_studies

    monkeypatch.setattr(registry, "STUDIES", {**registry.STUDIES, **fake_studies.REGISTRY})
    fake_studies.CALLS.clear()
    fake_studies.THREADS.clear()
    yield fake_studies
    fake_studies.CALLS.clear()
    fake_studies.THREADS.clear()
