"""etude.errors.one_line: messages that quote another library's exception stay on one line."""

from __future__ import annotations

import pickle

import pytest

from etude.errors import BadInputError, one_line


def test_one_line_joins_a_multiline_message() -> None:
    assert one_line(ValueError("first,\n  second\tthird")) == "first, second third"
    assert one_line(KeyError()) == "KeyError"


def test_a_cifar_batch_with_a_persistent_id_is_one_line(tmp_path) -> None:
    """pickle's 'persistent id' error spans two lines; the reader's message must not."""
    from etude.data.cifar import read_batch

    path = tmp_path / "data_batch_1"
    path.write_bytes(b"\x80\x02P0\n.")  # PERSID opcode: UnpicklingError with a two-line message
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(path.read_bytes())
    with pytest.raises(BadInputError) as info:
        read_batch(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
