"""Melodies: the skyline against a per-frame loop, the frame encoding, round trips, robust decoding."""

from __future__ import annotations

import numpy as np
import pytest

from etude.errors import BadInputError
from etude.music import MelodyEncoding, Performance, skyline

MEL = MelodyEncoding()


def _random(seed: int, n: int = 40) -> Performance:
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 100, n) / 10.0
    return Performance.from_arrays(rng.integers(40, 90, n), rng.integers(1, 128, n), start,
                                   start + rng.integers(1, 30, n) / 10.0)


def _frame(t):
    return np.floor(np.asarray(t) * 10 + 0.5).astype(int)


@pytest.mark.parametrize("seed", range(5))
def test_skyline_properties_on_random_performances(seed):
    perf = _random(seed)
    line = skyline(perf)  # 10 frames per second
    s, e, ms, me = _frame(perf.start), np.maximum(_frame(perf.end), _frame(perf.start) + 1), _frame(line.start), _frame(line.end)
    assert len(line) > 5 and np.all(me[:-1] <= ms[1:]) and np.all(me > ms)  # monophonic, on the frame grid
    for k, (pitch, f) in enumerate(zip(line.pitch, ms)):
        # each melody note is the highest note starting in its frame, ending at its own end or the next onset
        assert pitch == perf.pitch[s == f].max()
        source = np.flatnonzero((s == f) & (perf.pitch == pitch))
        assert me[k] in {int(e[source].max()), *([ms[k + 1]] if k + 1 < len(line) else [])}
    for pitch, f in zip(perf.pitch, s):
        # where any note starts, the melody sounds at least as high
        sounding = (ms <= f) & (f < me)
        assert sounding.sum() == 1 and line.pitch[sounding][0] >= pitch


def test_skyline_by_hand():
    # soprano 72 held while the alto moves 67 -> 65; in the soprano's rest the alto's 64 surfaces
    perf = Performance([(72, 90, 0.0, 1.0), (67, 60, 0.0, 0.5), (65, 61, 0.5, 1.0), (74, 91, 1.0, 1.4),
                        (64, 62, 1.5, 2.0), (76, 92, 1.6, 2.0)])
    assert skyline(perf).notes == [(72, 90, 0.0, 1.0), (74, 91, 1.0, 1.4), (64, 62, 1.5, 1.6), (76, 92, 1.6, 2.0)]
    assert skyline(Performance([(60, 30, 0.0, 2.0), (67, 90, 0.5, 1.0)])).notes == [
        (60, 30, 0.0, 0.5), (67, 90, 0.5, 1.0)]  # a held lower note does not resurface
    with pytest.raises(BadInputError, match="frames_per_second must be a number > 0, got -1"):
        skyline(perf, -1)


def test_skyline_of_a_chorale_performance_finds_the_soprano(bach):
    found = []
    for piece in bach.pieces:
        line = skyline(piece.performance)
        onsets = set(zip(line.pitch.tolist(), _frame(line.start).tolist()))
        found += [note in onsets for note in zip(piece.melody.pitch.tolist(), _frame(piece.melody.start).tolist())]
    assert np.mean(found) > 0.9


def test_hand_encoded_melody():
    melody = Performance([(60, 80, 0.0, 0.3), (62, 80, 0.3, 0.5), (62, 80, 0.7, 0.8)])
    ids = MEL.encode(melody)
    c4, d4 = 4 + 60 - 21, 4 + 62 - 21
    assert ids.tolist() == [c4, 2, 2, d4, 2, 3, 2, d4, 3]
    assert MEL.vocab_size == 93 and MEL.BOS == 92 and (MEL.PAD, MEL.EOS, MEL.NO_EVENT, MEL.NOTE_OFF) == (0, 1, 2, 3)
    assert MEL.encode(melody, bos=True, eos=True).tolist() == [92, *ids.tolist(), 1]
    assert MEL.decode(ids).notes == [(60, 100, 0.0, 0.3), (62, 100, 0.3, 0.5), (62, 100, 0.7, 0.8)]
    restruck = Performance([(62, 80, 0.0, 0.2), (62, 80, 0.2, 0.4)])
    assert MEL.encode(restruck).tolist() == [d4, 2, d4, 2, 3]


@pytest.mark.parametrize("seed", range(4))
def test_melody_round_trip_is_the_identity_after_one_pass(seed):
    ids = MEL.encode(_random(seed))
    assert np.array_equal(MEL.encode(MEL.decode(ids)), ids)


def test_corpus_melodies_are_the_soprano_and_encode(bach):
    for piece in bach.pieces:
        melody = piece.melody
        assert len(melody) > 10 and np.all(melody.end[:-1] <= melody.start[1:] + 0.06)  # monophonic up to jitter
        assert melody.pitch.mean() > piece.performance.pitch.mean()  # the top voice
        ids = MEL.encode(melody)
        assert np.array_equal(MEL.encode(MEL.decode(ids)), ids)
        played = set(zip(piece.performance.pitch.tolist(), piece.performance.start.round(9).tolist()))
        assert set(zip(melody.pitch.tolist(), melody.start.round(9).tolist())) <= played  # aligned


@pytest.mark.parametrize("seed", range(5))
def test_random_melody_ids_never_crash(seed):
    rng = np.random.default_rng(seed)
    for length in (0, 1, 50, 500):
        perf = MEL.decode(rng.integers(0, MEL.vocab_size, length))
        assert isinstance(perf, Performance) and np.all(perf.end[:-1] <= perf.start[1:])


def test_melody_bad_input():
    with pytest.raises(BadInputError, match=r"melody pitches 12..12 do not fit"):
        MEL.encode(Performance([(12, 80, 0.0, 1.0)]))
    with pytest.raises(BadInputError, match="frames_per_second must be a number > 0, got 0"):
        MelodyEncoding(frames_per_second=0)
    with pytest.raises(BadInputError, match=r"ids\[0\] = 93 is outside the vocabulary \[0, 93\)"):
        MEL.decode([93])
    with pytest.raises(BadInputError, match="velocity must be an int in"):
        MEL.decode([4], velocity=0)
