"""The music21 corpus: the cache (named by content, rebuilt when corrupt), splits, styles, augmentation."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pytest

import etude.music.corpus as corpus_module
from etude.errors import BadInputError
from etude.music import (
    CacheRebuiltWarning,
    Performance,
    Style,
    augment,
    cache_dir,
    load_corpus,
    load_scores,
    oa_similarity,
    render,
    split_of,
)


def test_cache_is_named_by_content_and_reused(bach, corpus_cache, monkeypatch):
    assert re.fullmatch(r"music21-bach-4-[0-9a-f]{16}\.npz", bach.cache_file.name)
    assert bach.cache_file.parent == corpus_cache
    monkeypatch.setattr(corpus_module, "parse_score", lambda path: pytest.fail(f"parsed {path} again"))
    again = load_corpus("bach", limit=4, cache=corpus_cache)
    assert [p.performance for p in again.pieces] == [p.performance for p in bach.pieces]
    assert [p.style for p in again.pieces] == [p.style for p in bach.pieces]


def test_default_cache_folder_is_etude_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ETUDE_CACHE", str(tmp_path / "here"))
    assert cache_dir() == tmp_path / "here"
    monkeypatch.setenv("ETUDE_CACHE", "")
    assert cache_dir().parts[-2:] == (".cache", "etude")


def _rewrite(path, **changes):
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


CORRUPTIONS = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "garbage": lambda p: p.write_bytes(b"\x00not a cache" * 50),
    "empty": lambda p: p.write_bytes(b""),
    "changed pitches, stale checksum": lambda p: _rewrite(p, pitch=np.load(p)["pitch"] + 1),
    "written for other sources": lambda p: _rewrite(p, key=np.array("0" * 64)),
    "missing array": lambda p: _rewrite(p, onset=None),
}


@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
def test_corrupt_cache_is_rebuilt_not_trusted(damage, tmp_path, bach):
    scores, path = load_scores("bach", limit=1, cache=tmp_path)
    CORRUPTIONS[damage](path)
    with pytest.warns(CacheRebuiltWarning, match="unusable.*rebuilding"):
        rebuilt, same_path = load_scores("bach", limit=1, cache=tmp_path)
    assert same_path == path
    assert [s.pitch.tolist() for s in rebuilt] == [s.pitch.tolist() for s in scores]
    assert np.array_equal(rebuilt[0].onset, scores[0].onset)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # the rebuilt file is whole
    load_scores("bach", limit=1, cache=tmp_path)  # and loads without a warning (warnings are errors here)
    # the same piece is played the same in a subset of one and a subset of four
    one = load_corpus("bach", limit=1, cache=tmp_path).pieces[0]
    assert one.performance == bach.pieces[0].performance and one.split == bach.pieces[0].split


def test_scores_parse_voices_and_melody_voice(bach, corpus_cache):
    scores, _ = load_scores("bach", limit=4, cache=corpus_cache)
    first = scores[0]
    assert first.name == "bach/bwv1.6" and first.voices == 5 and first.melody_voice == 1  # Horn 2, then Soprano
    assert first.length == 80.0
    for score in scores:
        assert np.all(score.duration > 0) and np.all(score.onset + score.duration <= score.length + 1e-9)
        assert 30 <= score.pitch.min() and score.pitch.max() <= 90
        soprano = score.pitch[score.voice == score.melody_voice].mean()
        bass = score.pitch[score.voice == score.voices - 1].mean()
        assert soprano > bass + 12


def test_split_is_by_piece_stable_and_near_the_fractions(bach):
    names = [f"piece{i}" for i in range(20000)]
    splits = [split_of(n) for n in names]
    shares = [splits.count(s) / len(names) for s in ("train", "validation", "test")]
    assert np.allclose(shares, [0.8, 0.1, 0.1], atol=0.01)
    assert [split_of(n, (0.5, 0.0, 0.5)) for n in names[:200]].count("validation") == 0
    parts = [bach.split(s) for s in ("train", "validation", "test")]
    assert sum(map(len, parts)) == len(bach)
    assert all(p.split == split_of(p.name) for p in bach.pieces)
    with pytest.raises(BadInputError, match="split must be one of"):
        bach.split("dev")
    with pytest.raises(BadInputError, match="3 non-negative numbers summing to 1"):
        split_of("x", (0.5, 0.5, 0.5))


def test_styles_are_seeded_per_piece(bach, corpus_cache):
    styles = [p.style for p in bach.pieces]
    assert len({s.tempo for s in styles}) == len(styles)
    other = load_corpus("bach", limit=4, seed=1, cache=corpus_cache)
    assert all(a.style != b.style and a.performance != b.performance for a, b in zip(bach.pieces, other.pieces))
    stats = bach.stats()
    assert stats["pieces"] == 4 and stats["tokens"] > 4 * 300 and stats["min_tokens"] > 300
    assert abs(sum(stats["token_shares"].values()) - 1.0) < 0.003  # shares are rounded to 3 digits
    assert stats["token_shares"]["note_on"] == stats["token_shares"]["note_off"]


STYLE = Style(tempo=90.0, level=70.0, balance=(12.0, -4.0, 2.0, -6.0), crescendo=20.0, articulation=0.7,
              jitter=0.015, velocity_jitter=3.0)


def _score(seed: int = 0, beats: int = 200):
    """Four voices, one note per beat each, random pitches per voice register."""
    rng = np.random.default_rng(seed)
    voice = np.repeat(np.arange(4), beats)
    pitch = np.concatenate([rng.integers(lo, lo + 12, beats) for lo in (67, 60, 52, 40)])
    onset = np.tile(np.arange(beats, dtype=float), 4)
    return voice, pitch, onset, np.ones(4 * beats), float(beats)


def test_rendered_performance_recovers_its_style():
    voice, pitch, onset, duration, length = _score()
    _, played = render(voice, pitch, onset, duration, length, STYLE, np.random.default_rng(1))
    start, end, velocity = played.T
    slope = np.polyfit(onset, start, 1)[0]
    assert 60.0 / slope == pytest.approx(STYLE.tempo, rel=0.005)
    assert np.median((end - start) / (duration * 60 / STYLE.tempo)) == pytest.approx(STYLE.articulation, abs=1e-9)
    residual = start - onset * 60 / STYLE.tempo
    assert 0.75 * STYLE.jitter < residual.std() < 1.05 * STYLE.jitter  # N(0, 1) clipped at 2: std 0.88
    for k, offset in enumerate(STYLE.balance):
        assert velocity[voice == k].mean() == pytest.approx(STYLE.level + offset, abs=1.0)
    assert np.polyfit(onset / length, velocity, 1)[0] == pytest.approx(STYLE.crescendo, abs=3.0)


def test_same_style_is_more_similar_than_another_style():
    voice, pitch, onset, duration, length = _score(beats=120)
    other = Style(tempo=60.0, level=40.0, balance=(0.0,) * 4, crescendo=-20.0, articulation=1.0, jitter=0.0,
                  velocity_jitter=6.0)
    play = lambda style, seed: render(voice, pitch, onset, duration, length, style, np.random.default_rng(seed))[0]
    same = oa_similarity(play(STYLE, 1), play(STYLE, 2))
    different = oa_similarity(play(STYLE, 1), play(other, 2))
    assert same > 0.9 and different < same - 0.3, (same, different)


def test_augmentation_ranges_and_alignment():
    perf = Performance([(60, 80, 0.0, 1.0), (64, 80, 1.0, 2.0)])
    melody = Performance([(64, 80, 1.0, 2.0)])
    rng = np.random.default_rng(0)
    shifts, factors = set(), []
    for _ in range(300):
        a, m = augment(perf, melody, rng=rng)
        shift, factor = int(a.pitch[0]) - 60, a.end[-1] / 2.0
        assert m.pitch[0] == 64 + shift and m.end[0] == pytest.approx(2.0 * factor)
        shifts.add(shift)
        factors.append(factor)
    assert shifts == set(range(-3, 4))
    assert 0.95 <= min(factors) < 0.96 and 1.04 < max(factors) <= 1.05
    high = Performance([(126, 80, 0.0, 1.0)])
    assert {int(augment(high, rng=rng)[0].pitch[0]) for _ in range(100)} == {123, 124, 125, 126, 127}
    with pytest.raises(BadInputError, match="no shift in .* keeps pitches 20..20 inside pitch_range"):
        augment(Performance([(20, 80, 0.0, 1.0)]), rng=rng, pitch_range=(30, 100))


@pytest.mark.parametrize(
    "kwargs, words",
    [({"collection": "jazz"}, ["collection must be one of", "bach", "'jazz'"]),
     ({"limit": 0}, ["limit must be an int >= 1", "0"]),
     ({"seed": -1}, ["seed must be an int >= 0", "-1"])],
)
def test_corpus_bad_arguments(kwargs, words, tmp_path):
    with pytest.raises(BadInputError) as info:
        load_corpus(**{"cache": tmp_path, **kwargs})
    assert all(w in str(info.value) for w in words), str(info.value)
