"""The token cache of a MIDI folder: contents, skipped files, reuse, invalidation, rebuilt entries."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

import etude.music.tokens as tokens_module
from etude.errors import BadInputError
from etude.music import CacheRebuiltWarning, MelodyEncoding, PerformanceEncoding, read_midi, skyline, split_of
from etude.music.tokens import SkippedFilesWarning, midi_files, tokenize_midi_dir

BAD = {"corrupt.mid": b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\xff\xff\xff\xffgarbage",
       "empty.mid": b"", "sub/notes.mid": b"these are my notes, not a MIDI file\n"}


@pytest.fixture
def folder(tmp_path, write_midi_folder):
    root = tmp_path / "midi"
    good = write_midi_folder(root, count=5)
    for name, data in BAD.items():
        (root / name).write_bytes(data)
    (root / "readme.txt").write_text("not read")
    (root / ".hidden.mid").write_bytes(b"")  # hidden: not read
    (root / "UPPER.MIDI").write_bytes(good[0].read_bytes())
    return root


def _expected_steps(ids: np.ndarray, enc: PerformanceEncoding) -> list[int]:
    """The 10 ms step of each id, summing shifts one by one through ``describe``."""
    out, step = [], 0
    for token in ids.tolist():
        out.append(step)
        kind, _, value = enc.describe(token).partition(" ")
        step += int(value) if kind == "shift" else 0
    return out


def _tokenize(root, **kwargs):
    with pytest.warns(SkippedFilesWarning) as caught:
        tokens = tokenize_midi_dir(root, cache=root.parent / "cache", show_progress=False, **kwargs)
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedFilesWarning)]
    assert len(messages) == 1, messages
    return tokens, messages[0]


def test_streams_hold_each_readable_file_and_bad_files_are_skipped_with_one_warning(folder):
    tokens, message = _tokenize(folder)
    assert tokens.built
    assert tokens.names == ("UPPER.MIDI", "piece0.mid", "piece2.mid", "piece4.mid", "sub/piece1.mid", "sub/piece3.mid")
    assert sorted(name for name, _ in tokens.skipped) == sorted(BAD)
    assert message.startswith(f"skipped 3 of {len(tokens) + 3} files that could not be read (first: corrupt.mid: ")
    assert "\n" not in message
    enc, menc = PerformanceEncoding(), MelodyEncoding()
    for i, name in enumerate(tokens.names):
        performance = read_midi(folder / name)
        ids = enc.encode(performance)
        p0, p1 = tokens.performance_offsets[i:i + 2]
        m0, m1 = tokens.melody_offsets[i:i + 2]
        assert np.array_equal(tokens.performance[p0:p1], ids)
        assert tokens.step[p0:p1].tolist() == _expected_steps(ids, enc)
        assert np.array_equal(tokens.melody[m0:m1], menc.encode(skyline(performance)))  # pitches 40-89: all in range
    assert isinstance(tokens.performance, np.memmap) and tokens.performance.dtype == np.uint16
    assert not list(tokens.entry.parent.rglob("*.tmp"))
    assert tokens.stats()["tokens"] == tokens.performance.size


def test_second_run_reads_no_midi_and_a_changed_file_invalidates_the_cache(folder, monkeypatch):
    first, _ = _tokenize(folder)
    calls = []
    real = tokens_module.read_midi
    monkeypatch.setattr(tokens_module, "read_midi", lambda path: calls.append(path) or real(path))
    again, message = _tokenize(folder)
    assert calls == [] and not again.built and again.entry == first.entry  # skipped files are remembered too
    assert message.startswith("skipped 3 of 9")
    assert np.array_equal(again.performance, first.performance)

    path = folder / "piece2.mid"  # one velocity byte changed in place: same size, same name
    data = bytearray(path.read_bytes())
    at = data.index(b"\x90") + 2
    data[at] = data[at] % 120 + 1
    path.write_bytes(bytes(data))
    changed, _ = _tokenize(folder)
    assert changed.built and changed.entry != first.entry and len(calls) == len(changed) + 3
    i = changed.names.index("piece2.mid")
    p0, p1 = changed.performance_offsets[i:i + 2]
    assert np.array_equal(changed.performance[p0:p1], PerformanceEncoding().encode(read_midi(path)))
    assert not np.array_equal(changed.performance, first.performance)


def test_a_corrupt_entry_is_rebuilt_not_trusted(folder):
    first, _ = _tokenize(folder)
    stream = first.entry / "performance.npy"
    data = bytearray(stream.read_bytes())
    data[-1] ^= 0xFF
    stream.write_bytes(bytes(data))
    with pytest.warns(CacheRebuiltWarning, match="does not match"), pytest.warns(SkippedFilesWarning):
        rebuilt = tokenize_midi_dir(folder, cache=folder.parent / "cache", show_progress=False)
    assert rebuilt.built and np.array_equal(rebuilt.performance[-3:], PerformanceEncoding().encode(
        read_midi(folder / rebuilt.names[-1]))[-3:])


def test_split_is_by_file_from_a_hash_of_its_path(tmp_path, write_midi_folder):
    root = tmp_path / "midi"
    write_midi_folder(root, count=40, notes=3)
    tokens = tokenize_midi_dir(root, cache=tmp_path / "cache", show_progress=False)
    train, held = tokens.split(0.25)
    assert sorted(np.r_[train, held].tolist()) == list(range(40))
    assert [tokens.names[i] for i in held] == [n for n in tokens.names if split_of(n, (0.75, 0.25, 0.0)) != "train"]
    assert 0 < held.size < 20
    (root / tokens.names[held[0]]).unlink()  # another file's split does not move
    fewer = tokenize_midi_dir(root, cache=tmp_path / "cache", show_progress=False)
    assert {fewer.names[i] for i in fewer.split(0.25)[1]} == {tokens.names[i] for i in held[1:]}
    assert tokens.split(0.0)[1].size == 0
    with pytest.raises(BadInputError, match="held_out"):
        tokens.split(1.0)


def test_folders_without_a_readable_file_are_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        tokenize_midi_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="holds no .mid or .midi file"):
        tokenize_midi_dir(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.mid").write_bytes(b"")
    with pytest.raises(BadInputError, match=r"none could be read \(first: a.mid: "):
        tokenize_midi_dir(bad, cache=tmp_path / "cache")
    assert [f for f in (tmp_path / "cache").rglob("*") if f.is_file()] == []  # nothing half-written is left
    assert midi_files(bad) == [bad / "a.mid"]


def test_ids_files_over_the_limits_are_refused_before_they_are_read(tmp_path, monkeypatch):
    from etude.music.tokens import MAX_IDS, MAX_IDS_TEXT_BYTES, read_ids

    npy = tmp_path / "many.npy"  # 10**8 int64 ids: a header, then 800 MB that are never written (sparse)
    with open(npy, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<i8", "fortran_order": False, "shape": (10**8,)})
        handle.truncate(handle.tell() + 8 * 10**8)
    text = tmp_path / "many.txt"  # 10**8 one-digit ids as text: 200 MB, sparse
    with open(text, "wb") as handle:
        handle.truncate(2 * 10**8)
    start = time.perf_counter()
    with pytest.raises(BadInputError, match=r"many.npy holds 100,000,000 ids, more than the 4,194,304 etude reads$"):
        read_ids(str(npy))
    with pytest.raises(BadInputError, match=r"many.txt is 190.7 MiB of text, more than the 64 MiB etude reads"):
        read_ids(str(text))
    assert time.perf_counter() - start < 1.0
    monkeypatch.setattr("sys.stdin", io.StringIO("1 " * (MAX_IDS_TEXT_BYTES // 2 + 1)))
    with pytest.raises(BadInputError, match=r"ids on stdin exceed 64 MiB of text"):
        read_ids("-")
    words = tmp_path / "words.txt"  # within the bytes, over the count
    words.write_text("1 " * (MAX_IDS + 1))
    with pytest.raises(BadInputError, match=r"ids: 4,194,305 items, more than the 4,194,304 etude reads$"):
        read_ids(str(words))
    # at the limits: read
    np.save(tmp_path / "ok.npy", np.arange(5))
    assert read_ids(str(tmp_path / "ok.npy")).tolist() == [0, 1, 2, 3, 4]
    (tmp_path / "ok.txt").write_text("[3, 4,\n5]")
    assert read_ids(str(tmp_path / "ok.txt")).tolist() == [3, 4, 5]
    with pytest.raises(BadInputError, match=r"ids: item 1 is 'x', expected an integer id"):
        (tmp_path / "bad.txt").write_text("3 x")
        read_ids(str(tmp_path / "bad.txt"))


def test_decoding_a_million_open_notes_of_one_key_is_linear():
    enc = PerformanceEncoding()
    n = 200_000
    ids = np.r_[np.full(n, enc.note_on_offset + 60), enc.shift_offset, np.full(n, enc.note_off_offset + 60)]
    start = time.perf_counter()
    assert len(enc.decode(ids)) == 1  # n notes of one key struck together: one note
    assert time.perf_counter() - start < 10  # a list's pop(0) took minutes here
