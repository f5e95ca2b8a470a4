"""Shared fixtures of the audio tests: private cache, no progress bars, one tiny-model factory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """No test may read or write the user's cache: ETUDE_CACHE points into tmp_path."""
    monkeypatch.setenv("ETUDE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ETUDE_PROGRESS", "0")

