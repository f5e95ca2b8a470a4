"""MAESTRO v3: the CSV's split column over a folder of MIDI files written by mido."""

from __future__ import annotations

import mido
import pytest
from tests.data.data_files import ROWS, write_maestro, write_midi

from etude.data import maestro_splits
from etude.errors import BadInputError, MissingDataError


def test_the_split_column_decides(tmp_path) -> None:
    folder = tmp_path / "maestro-v3.0.0"
    write_maestro(folder, ROWS)
    for k, (_, name) in enumerate(ROWS):
        write_midi(folder / name, 60 + k)
    splits = maestro_splits(tmp_path)
    assert splits == {
        "train": [folder / "2018/a.midi", folder / "2017/c.midi"],
        "validation": [folder / "2017/d.midi"],
        "test": [folder / "2018/b.midi"],
    }
    assert mido.MidiFile(splits["test"][0]).tracks[0][0].note == 61


def test_a_csv_naming_missing_files(tmp_path) -> None:
    folder = tmp_path / "maestro-v3.0.0"
    write_maestro(folder, ROWS)
    write_midi(folder / "2018/a.midi", 60)
    with pytest.raises(BadInputError) as info:
        maestro_splits(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{folder / 'maestro-v3.0.0.csv'}: names 3 MIDI files that are not there")
    assert message.endswith(str(folder / "2018/b.midi"))


def test_bad_split_and_bad_header(tmp_path) -> None:
    folder = tmp_path / "maestro-v3.0.0"
    write_maestro(folder, [("dev", "x.midi")])
    with pytest.raises(BadInputError, match="line 2: split 'dev' is not train, validation or test"):
        maestro_splits(tmp_path)
    (folder / "maestro-v3.0.0.csv").write_text("composer,title\nBach,x\n")
    with pytest.raises(BadInputError, match="a MAESTRO CSV has a header with split and midi_filename"):
        maestro_splits(tmp_path)


def test_missing_names_the_url(tmp_path) -> None:
    with pytest.raises(MissingDataError, match=r"maestro-v3\.0\.0-midi\.zip"):
        maestro_splits(tmp_path)
