"""Fixtures of the etude.data tests: a private search path, and no download ever reached."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    """$ETUDE_DATA unset, the cache folder inside tmp_path, and the download path failing the test if reached."""
    import etude.data.download as download

    monkeypatch.delenv("ETUDE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))

    def refuse(*args, **kwargs):
        pytest.fail("a test reached the download path")

    monkeypatch.setattr(download, "fetch", refuse)
    monkeypatch.setattr(download, "torchvision_datasets", refuse)
