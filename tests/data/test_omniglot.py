"""Omniglot from a tiny PNG tree in the release's layout (1-bit 105x105 drawings, alphabet/character folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.data.data_files import write_omniglot

from etude.data import load_omniglot
from etude.errors import BadInputError, MissingDataError


def test_loads_both_splits_labelled_by_character(tmp_path) -> None:
    write_omniglot(tmp_path / "omniglot-py")
    background = load_omniglot("background", tmp_path)
    evaluation = load_omniglot("evaluation", tmp_path)
    assert background.images.shape == (12, 105, 105) and background.images.dtype.itemsize == 1
    assert background.classes == ("Greek/character01", "Greek/character02", "Latin/character01", "Latin/character02")
    assert background.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert evaluation.classes == ("Tengwar/character01",) and len(evaluation) == 3
    images = background.images.numpy()
    for n, (label, j) in enumerate((lab, j) for lab in range(4) for j in range(3)):
        ink = np.argwhere(images[n] == 0)
        assert ink.tolist() == [[label, j]]  # one black pixel where it was drawn, paper (255) elsewhere
        assert int(images[n].max()) == 255


def test_data_dir_may_be_the_omniglot_folder_itself(tmp_path) -> None:
    write_omniglot(tmp_path)
    assert load_omniglot("evaluation", tmp_path).source == tmp_path / "images_evaluation"


def test_a_folder_without_its_split_folders(tmp_path) -> None:
    (tmp_path / "omniglot" / "Greek").mkdir(parents=True)
    with pytest.raises(MissingDataError) as info:
        load_omniglot("background", tmp_path)
    assert f"{tmp_path / 'omniglot'}: holds neither images_background nor images_evaluation" in str(info.value)
    (tmp_path / "omniglot" / "images_background").mkdir()
    with pytest.raises(MissingDataError, match="omniglot: no images_evaluation folder"):
        load_omniglot("background", tmp_path)


def test_an_unreadable_png_is_named(tmp_path) -> None:
    write_omniglot(tmp_path)
    bad = tmp_path / "images_background" / "Latin" / "character02" / "0003_02.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(BadInputError, match=rf"{bad}: unreadable PNG"):
        load_omniglot("background", tmp_path)
