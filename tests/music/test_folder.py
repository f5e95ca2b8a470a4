"""etude.music.midi_dir_crops: the --midi-dir recipe as a Python function (crop counts, held-out crops, transposition)."""

from __future__ import annotations

import pytest
from tests.music.midi_folders import write_performances

from etude.errors import BadInputError
from etude.music import PerformanceEncoding, midi_dir_crops


def test_crop_counts_and_the_held_out_split(tmp_path):
    write_performances(tmp_path / "midi", count=10)
    data = midi_dir_crops(tmp_path / "midi", max_tokens=32, per_piece=3, held_out=0.3, seed=0, held_crops=5,
                          cache=tmp_path / "cache")
    assert data.train_files + data.held_files == 10 and data.held_files >= 1
    assert len(data.train) == 3 * data.train_files
    assert data.held is not None and len(data.held) == min(4 * data.held_files, 5)
    batch = data.train.select(list(range(len(data.train))))
    assert batch.performance.shape == (len(data.train), 31)
    ids = batch.performance[batch.performance != PerformanceEncoding.PAD]
    assert int(ids.min()) >= 2 and int(ids.max()) < PerformanceEncoding().BOS


def test_no_held_out_files_and_bad_settings(tmp_path):
    write_performances(tmp_path / "midi", count=3)
    data = midi_dir_crops(tmp_path / "midi", max_tokens=16, per_piece=1, held_out=0.0, cache=tmp_path / "cache")
    assert data.held is None and len(data.train) == 3
    with pytest.raises(BadInputError, match="per_piece"):
        midi_dir_crops(tmp_path / "midi", per_piece=0, cache=tmp_path / "cache")
    with pytest.raises(BadInputError, match="held_out"):
        midi_dir_crops(tmp_path / "midi", held_out=1.0, cache=tmp_path / "cache")
