"""BRUNO's Omniglot splits (etude.exchangeable.data): 28x28 ink by area averaging, checked against a brute-force
block mean; background characters split three ways, whole; evaluation characters unseen."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tests.data.data_files import write_omniglot_scribbles

from etude.errors import BadInputError, MissingDataError
from etude.exchangeable.data import load_image_splits, omniglot_ink, sample_episodes, sample_sequences


def test_omniglot_ink_is_the_rounded_mean_of_each_block():
    drawings = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 105, 105), dtype=np.uint8))
    got = omniglot_ink(drawings)
    assert got.shape == (2, 1, 28, 28)
    ink = 255.0 - drawings.numpy().astype(np.float64)
    for i in range(28):
        r0, r1 = (i * 105) // 28, math.ceil((i + 1) * 105 / 28)
        for j in range(28):
            c0, c1 = (j * 105) // 28, math.ceil((j + 1) * 105 / 28)
            want = np.round(ink[:, r0:r1, c0:c1].mean(axis=(1, 2)))
            assert got[:, 0, i, j].tolist() == want.tolist()
    paper = torch.full((1, 105, 105), 255, dtype=torch.uint8)
    assert omniglot_ink(paper).abs().sum() == 0  # blank paper is no ink


@pytest.fixture(scope="module")
def omniglot(tmp_path_factory):
    root = tmp_path_factory.mktemp("omniglot")
    write_omniglot_scribbles(root / "omniglot-py", background=10, evaluation=5)
    return root


def test_background_characters_split_whole_and_evaluation_characters_are_unseen(omniglot):
    s = load_image_splits("omniglot", seed=3, data_dir=str(omniglot))
    assert s.levels == 256 and s.train_x.shape[1:] == (1, 28, 28)
    assert 0 <= float(s.train_x.min()) and float(s.train_x.max()) <= 255
    groups = [set(y.tolist()) for y in (s.train_y, s.val_y, s.test_y, s.unseen_y)]
    assert [len(g) for g in groups] == [6, 2, 2, 5]  # round(0.15 * 10) = 2 val, round(0.2 * 10) = 2 test
    assert set().union(*groups[:3]) == set(range(10)) and groups[3] == set(range(10, 15))
    for x, y in ((s.train_x, s.train_y), (s.val_x, s.val_y), (s.test_x, s.test_y), (s.unseen_x, s.unseen_y)):
        assert all(int((y == c).sum()) == 20 for c in y.unique())  # every drawing of a character stays with it
        assert len(x) == len(y)
    # character k's bar sits on rows 10 + 6k .. 15 + 6k of 105: its ink in the 28-row image follows it
    k = int(s.unseen_y[0])
    rows = s.unseen_x[0, 0].sum(1)
    assert abs(int(rows.argmax()) - round((13 + 6 * k) * 28 / 105)) <= 1
    again = load_image_splits("omniglot", seed=3, data_dir=str(omniglot))
    assert torch.equal(again.train_y, s.train_y) and torch.equal(again.test_x, s.test_x)
    other = load_image_splits("omniglot", seed=4, data_dir=str(omniglot))
    assert (set(other.val_y.tolist()), set(other.test_y.tolist())) != (groups[1], groups[2])
    seqs, classes = sample_sequences(s.train_x, s.train_y, 3, 20, torch.Generator().manual_seed(0))
    assert seqs.shape == (3, 20, 1, 28, 28)
    support, query = sample_episodes(s.unseen_x, s.unseen_y, 5, 5, 2, torch.Generator().manual_seed(0))
    assert support.shape == (2, 5, 5, 1, 28, 28) and query.shape == (2, 5, 1, 28, 28)


def test_omniglot_refuses_per_class_and_says_when_it_is_missing(omniglot, tmp_path):
    with pytest.raises(BadInputError, match="per_class applies to mnist and fashion-mnist; omniglot is used whole"):
        load_image_splits("omniglot", data_dir=str(omniglot), per_class=5)
    with pytest.raises(MissingDataError):
        load_image_splits("omniglot", data_dir=str(tmp_path / "nothing"))


def test_a_class_with_too_few_images_is_one_short_line():
    labels = torch.arange(500).repeat_interleave(3)
    with pytest.raises(BadInputError, match=r"^every class needs at least 20 images; 500 of 500 have fewer \(class 0: 3\)$"):
        sample_sequences(torch.zeros(1500, 1, 2, 2), labels, 1, 20)
