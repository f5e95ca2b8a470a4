"""MIDI reading faults of issue 25 (part 5) and 29 (parts 6, 7), one test each: notes as pretty_midi
pairs them across program changes, same-tick re-strikes, a missing end-of-track, the early pedal as
note_seq applies it, absurd lengths and garbage refused in one line, a longer header read, and
hostile files read in bounded time and memory."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mido
import numpy as np
import pytest
from tests.music.test_midi_parity import _assert_same_notes, _reference, _save, off, on, pedal

from etude.errors import BadInputError
from etude.music import PerformanceEncoding, read_midi
from etude.music import midi_rules
from etude.music.midi import MAX_MIDI_BYTES, read_notes

pytest.importorskip("pretty_midi")
pytest.importorskip("note_seq")

ROOT = Path(__file__).resolve().parents[2]


def program(number, channel=0):
    return mido.Message("program_change", program=number, channel=channel)


def _track(*events: bytes) -> bytes:
    data = b"".join(events)
    return b"MTrk" + struct.pack(">I", len(data)) + data


def _header(tracks: int, ticks_per_beat: int = 480, length: int = 6) -> bytes:
    return b"MThd" + struct.pack(">IHHH", length, 1, tracks, ticks_per_beat) + bytes(length - 6)


def _delta(ticks: int) -> bytes:
    out = [ticks & 0x7F]
    while ticks > 0x7F:
        ticks >>= 7
        out.append(0x80 | (ticks & 0x7F))
    return bytes(reversed(out))


def test_notes_pair_across_program_changes_as_pretty_midi_pairs_them(tmp_path):
    # one note-off closes the key's notes struck under programs 0 and 5 (symusic split the
    # channel by program: the reader built on it kept one note of 60 and lengthened the second 62)
    path = _save(tmp_path / "programs.mid", [[(0, on(60)), (100, program(5)), (200, on(60, 90)), (480, off(60)),
                                              (600, on(62)), (700, program(0)), (800, on(62, 90)), (900, off(62)),
                                              (1000, off(62))]])
    mine = read_midi(path)
    assert [(n.pitch, n.start, n.end) for n in mine] == [(60, 0.0, 200 / 960), (60, 200 / 960, 0.5),
                                                         (62, 600 / 960, 800 / 960), (62, 800 / 960, 900 / 960)]
    _assert_same_notes(mine, _reference(path))


def _random_file(path, seed: int):
    """Random events on keys 60-62 of channels 0, 1 and 9 in three tracks: note-ons, note-offs,
    program changes, pedals (some before any note), and bursts of note-on, note-off, note-on at one tick."""
    rng = np.random.default_rng(seed)
    tracks = []
    for _ in range(3):
        events = [(0, pedal(127, int(rng.integers(0, 2))))] if rng.random() < 0.5 else []
        for tick in np.sort(rng.choice(3000, 120, replace=False)).tolist():
            key, channel = int(rng.integers(60, 63)), int(rng.choice([0, 1, 9], p=[0.45, 0.45, 0.1]))
            kind = rng.choice(["off", "on", "pedal", "program", "burst"], p=[0.35, 0.35, 0.1, 0.1, 0.1])
            if kind == "off":
                events.append((tick, off(key, channel, bool(rng.integers(2)))))
            elif kind == "on":
                events.append((tick, on(key, int(rng.integers(1, 128)), channel)))
            elif kind == "pedal":
                events.append((tick, pedal(int(rng.choice([0, 127])), channel)))
            elif kind == "program":
                events.append((tick, program(int(rng.integers(0, 4)), channel)))
            else:
                events += [(tick, on(key, 70, channel)), (tick, off(key, channel)), (tick, on(key, 90, channel))]
        tracks.append(sorted(events, key=lambda e: e[0]))
    return _save(path, tracks, ticks_per_beat=96)


@pytest.mark.parametrize("seed", range(8))
def test_random_files_with_programs_pedals_and_bursts_equal_pretty_midi_and_note_seq(tmp_path, seed):
    path = _random_file(tmp_path / "random.mid", seed)
    mine, reference = read_midi(path), _reference(path)
    assert len(mine) > 40
    _assert_same_notes(mine, reference)
    encoding = PerformanceEncoding()
    assert encoding.encode(mine).tolist() == encoding.encode(reference).tolist()


def test_the_compiled_loops_equal_their_python_source(tmp_path):
    """numba's machine code and the plain Python it compiles agree (types, overflow, bounds)."""
    scan, sustain = midi_rules.compiled()[:2]
    for seed in range(3):
        data = np.frombuffer(_random_file(tmp_path / f"r{seed}.mid", seed).read_bytes(), dtype=np.uint8)
        at, begins, ends = 14, [], []
        while at < data.size:
            size = int.from_bytes(data[at + 4 : at + 8].tobytes(), "big")
            begins.append(at + 8)
            ends.append(at + 8 + size)
            at += 8 + size
        args = (data, np.array(begins, dtype=np.int64), np.array(ends, dtype=np.int64))
        fast, slow = scan(*args), midi_rules.scan_tracks(*args)
        assert fast[:2] == slow[:2] == (0, -1) and fast[-1] == slow[-1]
        for a, b in zip(fast[2:6], slow[2:6]):
            assert np.array_equal(a, b)
        notes, pedals, instruments = fast[2:5]
        last = int(notes[:, 4].max())
        for a, b in zip(sustain(notes, pedals, instruments, last),
                        midi_rules.apply_sustain(notes, pedals, instruments, last)):
            assert np.array_equal(a, b)


def test_same_tick_restrike_is_kept(tmp_path):
    # note-on, note-off, note-on of one key at one tick: the second note sounds on (pretty_midi);
    # the reader built on symusic dropped it
    path = _save(tmp_path / "restrike.mid", [[(480, on(60, 90)), (480, off(60)), (480, on(60, 100)), (960, off(60)),
                                              (1000, on(62)), (1200, on(62, 90)), (1200, off(62)), (1200, on(62, 99)),
                                              (1300, off(62))]])
    mine = read_midi(path)
    assert [(n.velocity, n.start, n.end) for n in mine] == [(100, 0.5, 1.0), (80, 1000 / 960, 1.25),
                                                            (99, 1.25, 1300 / 960)]
    _assert_same_notes(mine, _reference(path))


def test_music21s_test16_keeps_its_same_tick_restrikes():
    music21 = pytest.importorskip("music21")
    path = Path(music21.__file__).parent / "midi" / "testPrimitive" / "test16.mid"
    # the file holds note-on, note-off, note-on of one key at one tick
    found = False
    for track in mido.MidiFile(path).tracks:
        tick, seen = 0, []
        for message in track:
            tick += message.time
            if message.type in ("note_on", "note_off"):
                sounding = message.type == "note_on" and message.velocity > 0
                seen = [m for m in seen if m[0] == tick] + [(tick, message.note, sounding)]
                found |= [s for t, k, s in seen if k == message.note][-3:] == [True, False, True]
    assert found
    _assert_same_notes(read_midi(path), _reference(path))


def test_a_track_without_end_of_track_is_read(tmp_path):
    # a key struck again, one note-off for both, no end-of-track: the reader built on symusic lost the second note
    notes = b"\x00\x90\x3c\x50" + _delta(240) + b"\x90\x3c\x64" + _delta(240) + b"\x80\x3c\x00"
    path = tmp_path / "no_end.mid"
    path.write_bytes(_header(1) + _track(notes))
    mine = read_midi(path)
    assert [(n.velocity, n.start, n.end) for n in mine] == [(80, 0.0, 0.25), (100, 0.25, 0.5)]
    _assert_same_notes(mine, _reference(path))


def test_an_early_pedal_then_a_program_change_sustains_as_note_seq_does(tmp_path):
    # the pedal comes before the channel's first note: pretty_midi files it as a straggler whose
    # list the instruments of programs 0 and 5 share, so note_seq lifts it for both at 600 (the
    # reader built on symusic ended 64 at its note-off and held 60 to the end)
    path = _save(tmp_path / "early_pedal.mid", [[(0, pedal(127)), (100, on(60)), (200, off(60)), (300, program(5)),
                                                 (400, on(64)), (500, off(64)), (600, pedal(0)), (700, on(67)),
                                                 (720, off(67))]])
    mine = read_midi(path)
    assert [(n.pitch, n.end) for n in mine] == [(60, 600 / 960), (64, 600 / 960), (67, 720 / 960)]
    _assert_same_notes(mine, _reference(path))


def test_a_note_within_the_time_limit_keeps_its_length_and_a_day_long_one_is_refused(tmp_path):
    far = (1 << 27) + 1  # the old reader dropped notes longer than 2**27 ticks without a word
    kept = tmp_path / "long.mid"
    kept.write_bytes(_header(1, ticks_per_beat=9600) + _track(b"\x00\x90\x3c\x50" + _delta(far) + b"\x80\x3c\x00"))
    assert read_midi(kept).notes == [(60, 80, 0.0, pytest.approx(far * 0.5 / 9600, abs=1e-9))]  # 1.94 h at 120 bpm
    refused = tmp_path / "day.mid"
    refused.write_bytes(_header(1) + _track(b"\x00\x90\x3c\x50" + _delta(far) + b"\x80\x3c\x00"))
    with pytest.raises(BadInputError, match=r"^\S*day.mid is not a readable MIDI file \(an event at 39 h, later than "
                                            r"the 24 h allowed\)$"):
        read_midi(refused)


def test_a_track_past_tick_2_31_is_refused_in_one_line(tmp_path):
    path = tmp_path / "far.mid"
    events = b"\x00\x90\x3c\x50" + (_delta((1 << 28) - 1) + b"\xff\x01\x00") * 8 + _delta(100) + b"\x80\x3c\x00"
    path.write_bytes(_header(1) + _track(events))
    with pytest.raises(BadInputError, match=r"far.mid is not a readable MIDI file \(track 1: a track runs past "
                                            r"tick 2147483647\)$"):
        read_midi(path)


@pytest.mark.parametrize("tracks", [0, 1, 2])
def test_garbage_after_a_valid_header_is_refused_in_one_line(tmp_path, tracks):
    # a header announcing no tracks, then random bytes: read as an empty file before (0 ids, exit 0)
    track = _track(b"\x00\x90\x3c\x50\x60\x80\x3c\x00\x00\xff\x2f\x00")
    path = tmp_path / "garbage.mid"
    garbage = np.random.default_rng(tracks).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path.write_bytes(_header(tracks) + track * (tracks // 2) + garbage)
    with pytest.raises(BadInputError, match=r"garbage.mid is not a readable MIDI file \(.*\)$") as raised:
        read_midi(path)
    assert "\n" not in str(raised.value)
    path.write_bytes(_header(tracks) + track * tracks + bytes(100))  # zero padding after the tracks is fine
    assert len(read_midi(path)) == min(tracks, 1)


def test_missing_and_cut_tracks_are_refused(tmp_path):
    track = _track(b"\x00\x90\x3c\x50\x60\x80\x3c\x00\x00\xff\x2f\x00")
    cases = {
        "missing": (_header(2) + track, r"the header announces 2 tracks, the file holds 1 tracks"),
        "cut": (_header(1) + track[:-3], r"the MTrk chunk at offset 14 runs 3 bytes past the end"),
        "inside": (_header(1) + _track(b"\x00\x90\x3c"), r"track 1: a track ends inside an event"),
        "data": (_header(1) + _track(b"\x00\x90\x3c\xc0"), r"track 1: a data byte is above 127"),
        "running": (_header(1) + _track(b"\x00\x3c\x50"), r"track 1: running status before any status byte"),
        "tempo": (_header(1) + _track(b"\x00\xff\x51\x03\x00\x00\x00"), r"track 1: a tempo event is not 3 bytes"),
        "header": (b"MThd" + struct.pack(">IHHH", 4, 1, 1, 480) + track, r"a header chunk of 4 bytes"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / f"{name}.mid").write_bytes(data)
        with pytest.raises(BadInputError, match=rf"{name}.mid is not a readable MIDI file \({message}"):
            read_midi(tmp_path / f"{name}.mid")


def test_a_longer_header_chunk_and_unknown_chunks_are_read(tmp_path):
    track = _track(b"\x00\xc0\x05\x00\x90\x3c\x50\x83\x60\x3c\x00\x00\xff\x2f\x00")  # running status note-off
    path = tmp_path / "long_header.mid"
    path.write_bytes(_header(1, length=8) + b"XFIH" + struct.pack(">I", 3) + b"abc" + track)
    mine = read_midi(path)
    assert mine.notes == [(60, 80, 0.0, 0.5)]
    (tmp_path / "plain.mid").write_bytes(_header(1, length=8) + track)
    _assert_same_notes(read_midi(tmp_path / "plain.mid"), _reference(tmp_path / "plain.mid"))


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.mid"
    with open(path, "wb") as handle:
        handle.write(_header(1))
        handle.truncate(MAX_MIDI_BYTES + 1)  # sparse: nothing written, nothing read
    start = time.perf_counter()
    with pytest.raises(BadInputError, match=r"huge.mid is 8.0 MiB, more than the 8 MiB a MIDI file may have$"):
        read_notes(path)
    assert time.perf_counter() - start < 0.1


def test_hostile_files_are_read_in_bounded_time_and_memory(tmp_path):
    """65,535 empty tracks (786 KB; 2.2 GB to read before) and 10**5 unclosed notes in 1,000 tracks
    (4 GiB before) read as empty performances, in a child process whose peak memory is measured."""
    empty = tmp_path / "empty_tracks.mid"
    empty.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 1, 65535, 480) + _track(b"\x00\xff\x2f\x00") * 65535)
    assert empty.stat().st_size == 786_434
    unclosed = tmp_path / "unclosed.mid"
    track = _track(b"".join(bytes([0, 0x90 | (i % 16), 20 + i % 100, 64]) for i in range(100)) + b"\x00\xff\x2f\x00")
    unclosed.write_bytes(_header(1000) + track * 1000)
    small = tmp_path / "small.mid"
    small.write_bytes(_header(1) + _track(b"\x00\x90\x3c\x50\x60\x80\x3c\x00\x00\xff\x2f\x00"))
    script = textwrap.dedent(f"""
        import resource, sys, time
        from etude.music import read_midi
        assert len(read_midi({str(small)!r})) == 1  # compiled and warmed up
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        sizes = [len(read_midi(p)) for p in ({str(empty)!r}, {str(unclosed)!r})]
        print(sizes, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, time.perf_counter() - start)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    sizes, grown_mb, seconds = done.stdout.split("]")[0] + "]", *map(float, done.stdout.split("]")[1].split())
    assert sizes == "[0, 0]"
    assert grown_mb < 64 and seconds < 10, done.stdout


def test_the_compiled_piano_rule_equals_performances(tmp_path):
    """The reader's one-pass ``one_note_per_key`` equals ``Performance``'s NumPy rule bit for bit,
    on notes with unisons, re-strikes and equal starts."""
    from etude.music.performance import _one_note_per_key

    one_note_per_key = midi_rules.compiled()[3]
    rng = np.random.default_rng(0)
    for n in (0, 1, 5, 60, 400):
        pitch, velocity = rng.integers(58, 64, n), rng.integers(1, 128, n)
        start = rng.integers(0, 40, n) / 8
        end = start + rng.integers(1, 20, n) / 8
        for a, b in zip(one_note_per_key(pitch, velocity, start, end), _one_note_per_key(pitch, velocity, start, end)):
            assert a.dtype == b.dtype and np.array_equal(a, b)
