"""Shared fixtures of the music tests: a tiny Bach corpus parsed once into a temporary cache."""

from __future__ import annotations

import pytest

from etude.music import load_corpus

SUBSET = 4  # pieces parsed for the whole session (about 0.2-0.8 s each)


@pytest.fixture(scope="session")
def corpus_cache(tmp_path_factory):
    """A fresh cache folder holding the first SUBSET Bach chorales."""
    folder = tmp_path_factory.mktemp("etude_cache")
    load_corpus("bach", limit=SUBSET, cache=folder, show_progress=False)
    return folder


@pytest.fixture(scope="session")
def bach(corpus_cache):
    """The first SUBSET Bach chorales, seed 0, loaded from the session cache."""
    return load_corpus("bach", limit=SUBSET, cache=corpus_cache, show_progress=False)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """No test may read or write the user's cache: ETUDE_CACHE points into tmp_path."""
    monkeypatch.setenv("ETUDE_CACHE", str(tmp_path / "default_cache"))
    monkeypatch.setenv("ETUDE_PROGRESS", "0")


@pytest.fixture
def write_midi_folder():
    """``write(root, count=6, seed=0, notes=30, prefix='piece') -> [paths]``: random MIDI files for folder tests."""
    from tests.music.midi_folders import write_performances

    return write_performances
