"""Crops streamed from a token cache: equal to crops cut in memory, boundaries, uniform starts, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tests.music.midi_folders import write_performances

from etude.errors import BadInputError
from etude.music import MelodyEncoding, PerformanceEncoding, read_midi, skyline
from etude.music.stream import StreamCrops
from etude.music.tokens import tokenize_midi_dir

MAX_TOKENS = 24


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream") / "midi"
    write_performances(root, count=5, notes=30)
    write_performances(root, count=1, notes=2, prefix="short")  # shorter than a window
    return tokenize_midi_dir(root, cache=root.parent / "cache", show_progress=False)


def _in_memory(tokens, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, seconds at each id, melody frames) of one file, encoded in memory."""
    performance = read_midi(tokens.source / name)
    enc = PerformanceEncoding()
    ids = enc.encode(performance)
    shifts = [int(enc.describe(t).split()[1]) if enc.describe(t).startswith("shift") else 0 for t in ids.tolist()]
    seconds = np.concatenate([[0], np.cumsum(shifts)]) / 100  # the time before each id, then the end
    return ids, seconds, MelodyEncoding().encode(skyline(performance))


def test_streamed_crops_equal_crops_cut_in_memory(tokens):
    train, _ = tokens.split(0.0)
    data = StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=60, seed=3)
    batch = data.select(torch.arange(len(data)))
    assert batch.performance.shape == (60, MAX_TOKENS - 1) and batch.melody.shape == (60, MAX_TOKENS)
    memory = {name: _in_memory(tokens, name) for name in tokens.names}
    for i in range(len(data)):
        f, s, e = data.window(i)
        ids, seconds, melody = memory[tokens.names[f]]
        assert e == min(s + MAX_TOKENS - 1, ids.size)
        expected = np.zeros(MAX_TOKENS - 1, dtype=np.int64)
        expected[:e - s] = ids[s:e]
        assert batch.performance[i].tolist() == expected.tolist()
        g0 = math.floor(seconds[s] * 10 + 0.5)
        g1 = melody.size if e == ids.size else math.floor(seconds[e] * 10 + 0.5)
        line = melody[g0:g1][:MAX_TOKENS] if g1 > g0 else np.array([MelodyEncoding.NO_EVENT])
        assert batch.melody[i, :line.size].tolist() == line.tolist() and not batch.melody[i, line.size:].any()


def test_windows_start_at_boundaries_inside_their_split_uniformly(tokens):
    enc = PerformanceEncoding()
    train, held = tokens.split(0.3)
    assert train.size and held.size
    data = StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=6000, seed=0)
    starts = {}
    for i in range(len(data)):
        f, s, e = data.window(i)
        assert f in train
        p0, p1 = tokens.performance_offsets[f:f + 2]
        ids = tokens.performance[p0:p1]
        kind = enc.describe(int(ids[s])).split()[0]
        assert kind in ("shift", "velocity", "note_on"), kind
        assert not (kind == "note_on" and s > 0 and enc.describe(int(ids[s - 1])).startswith("velocity"))
        assert e - s == min(MAX_TOKENS - 1, p1 - p0) and s + min(MAX_TOKENS - 1, p1 - p0) <= p1 - p0
        starts[(f, s)] = starts.get((f, s), 0) + 1
    allowed = 0  # every allowed start of the train files (leaving a whole window) is equally likely
    for f in train.tolist():
        p0, p1 = tokens.performance_offsets[f:f + 2]
        ids = tokens.performance[p0:p1]
        for s in range(max(p1 - p0 - MAX_TOKENS + 1, 0) + 1):
            kind = enc.describe(int(ids[s])).split()[0]
            after_velocity = s > 0 and enc.describe(int(ids[s - 1])).startswith("velocity")
            allowed += kind in ("shift", "velocity") or (kind == "note_on" and not after_velocity)
    counts = np.array(list(starts.values()))
    mean = len(data) / allowed
    assert len(starts) == allowed  # 6000 draws over ~300 starts reach all of them
    assert abs(counts - mean).max() < 6 * math.sqrt(mean), (counts.min(), counts.max(), mean)


def test_windows_are_fixed_by_the_seed(tokens):
    train, _ = tokens.split(0.0)
    a, b = (StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=50, seed=7) for _ in range(2))
    c = StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=50, seed=8)
    index = torch.tensor([3, 1, 4, 1, 5])
    assert torch.equal(a.select(index).performance, b.select(index).performance)
    assert np.array_equal(a.start, b.start) and not np.array_equal(a.start, c.start)
    assert a.to("cpu") is a
    with pytest.raises(BadInputError, match="count"):
        StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=0, seed=0)
    with pytest.raises(BadInputError, match="at least one file"):
        StreamCrops(tokens, [], max_tokens=MAX_TOKENS, count=1, seed=0)


def test_fit_on_streamed_crops_resumes_to_the_uninterrupted_result(tokens, tmp_path):
    from etude.music import TransformerAutoencoder, TransformerConfig
    from etude.music.training import fit, nll

    train, _ = tokens.split(0.0)
    data = StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=40, seed=1)

    class Stop(Exception):
        pass

    class Dying(StreamCrops):
        calls = 0

        def select(self, index):
            Dying.calls += 1
            if Dying.calls > 3:
                raise Stop
            return super().select(index)

    dying = object.__new__(Dying)
    dying.__dict__.update(data.__dict__)

    def model():
        torch.manual_seed(0)
        cfg = TransformerConfig(vocab_size=PerformanceEncoding().vocab_size, dim=16, heads=2, layers=1, ff=32,
                                max_len=MAX_TOKENS, dropout=0.1)
        return TransformerAutoencoder(cfg, "melody+performance", encoder_layers=1)

    settings = {"steps": 5, "batch_size": 4, "lr": 3e-3, "seed": 2, "every": 2, "show_progress": False}
    whole = model()
    losses = fit(whole, data, **settings)
    with pytest.raises(Stop):
        fit(model(), dying, checkpoint=tmp_path / "ckpt.pt", **settings)
    resumed = model()
    assert fit(resumed, data, checkpoint=tmp_path / "ckpt.pt", resume=True, **settings) == losses
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert nll(whole, data) == pytest.approx(nll(whole, data.select(torch.arange(len(data)))), rel=1e-6)


def test_fit_through_a_fabric_streams_the_same_batches(tokens):
    """The Fabric path of ``fit`` (``to``, one ``select`` of the global batch) on streamed crops, as plain ``fit``."""
    from etude.music import TransformerAutoencoder, TransformerConfig
    from etude.music.training import fit
    from etude.runtime import Distributed

    train, _ = tokens.split(0.0)
    data = StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=30, seed=4)
    cfg = TransformerConfig(vocab_size=PerformanceEncoding().vocab_size, dim=16, heads=2, layers=1, ff=32,
                            max_len=MAX_TOKENS, dropout=0.0)
    runs = []
    for fabric in (None, Distributed(accelerator="cpu").make_fabric()):
        torch.manual_seed(0)
        model = TransformerAutoencoder(cfg, "performance", encoder_layers=1)
        runs.append(fit(model, data, steps=3, batch_size=4, lr=3e-3, seed=0, show_progress=False, fabric=fabric))
    assert runs[1] == pytest.approx(runs[0], rel=1e-5)


def test_transposed_crops_are_the_same_crops_a_few_semitones_away(tokens):
    enc, menc = PerformanceEncoding(), MelodyEncoding()
    train, _ = tokens.split(0.0)
    plain = StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=120, seed=5)
    moved = StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=120, seed=5, transpose=3)
    assert np.array_equal(plain.start, moved.start) and set(moved.shift.tolist()) == set(range(-3, 4))
    a, b = plain.select(torch.arange(120)), moved.select(torch.arange(120))
    for i, k in enumerate(moved.shift.tolist()):  # the files' pitches are 40-89: no shift needs cutting
        before, after = enc.decode(a.performance[i]), enc.decode(b.performance[i])
        assert after.notes == [(p + k, v, s, e) for p, v, s, e in before.notes]
        assert torch.equal(a.performance[i] >= enc.shift_offset, b.performance[i] >= enc.shift_offset)
        melody_before, melody_after = menc.decode(a.melody[i]), menc.decode(b.melody[i])
        assert melody_after.notes == [(p + k, v, s, e) for p, v, s, e in melody_before.notes]
    high = np.array([enc.note_on(107), enc.time_shift(5), enc.note_off(107)])
    moved._transpose(high, np.array([menc.NO_EVENT, 107 - 21 + menc.RESERVED]), 3)
    assert high.tolist() == [enc.note_on(108), enc.time_shift(5), enc.note_off(108)]  # up to the top key only
    low = np.array([enc.note_on(5), enc.note_off(5)])
    moved._transpose(low, np.array([], dtype=np.int64), -2)
    assert low.tolist() == [enc.note_on(5), enc.note_off(5)]  # already off the piano: left as it is
    with pytest.raises(BadInputError, match="transpose"):
        StreamCrops(tokens, train, max_tokens=MAX_TOKENS, count=1, seed=0, transpose=13)
