"""Performance: validation, piano key rules, transforms, and MIDI files (sustain pedal, damaged files)."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from etude.errors import BadInputError
from etude.music import Note, Performance, read_midi


def _perf(seed: int, n: int = 60) -> Performance:
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 10, n)
    return Performance.from_arrays(rng.integers(30, 90, n), rng.integers(1, 128, n), start,
                                   start + rng.uniform(0.01, 2.0, n))


@pytest.mark.parametrize(
    "notes, words",
    [
        ([(128, 80, 0.0, 1.0)], ["note 0", "pitch", "[0, 127]", "128"]),
        ([(60, 80, 0.0, 1.0), (60, 0, 0.0, 1.0)], ["note 1", "velocity", "[1, 127]", "got 0"]),
        ([(60, 80, -0.5, 1.0)], ["start", ">= 0", "-0.5"]),
        ([(60, 80, 1.0, 1.0)], ["end", "> start", "1.0"]),
        ([(60, 80, 0.0, float("nan"))], ["end", "finite", "nan"]),
        ([(60, 80, 0.0)], ["expected (pitch, velocity, start, end)"]),
        ([(60.5, 80, 0.0, 1.0)], ["pitch", "integers"]),
    ],
)
def test_invalid_notes_are_named(notes, words):
    with pytest.raises(BadInputError) as info:
        Performance(notes)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(BadInputError, match="one length.*2, 1, 2, 2"):
        Performance.from_arrays([60, 61], [80], [0.0, 1.0], [1.0, 2.0])


@pytest.mark.parametrize("seed", range(3))
def test_one_sounding_note_per_key_against_a_loop(seed):
    rng = np.random.default_rng(seed)
    n = 200  # 60 keys, 200 notes: many same-key overlaps to resolve
    pitch, velocity = rng.integers(30, 90, n), rng.integers(1, 128, n)
    start = rng.integers(0, 400, n) / 40.0  # coarse grid: some same-key notes start together
    end = start + rng.integers(1, 80, n) / 40.0
    expected = []
    for key in sorted(set(pitch.tolist())):
        mine = sorted((s, -e, v) for p, v, s, e in zip(pitch, velocity, start, end) if p == key)
        merged = []  # notes struck together: one note, the longest end, the loudest velocity
        for s, neg_e, v in mine:
            if merged and merged[-1][0] == s:
                merged[-1][2] = max(merged[-1][2], v)
            else:
                merged.append([s, -neg_e, v])
        for i, (s, e, v) in enumerate(merged):
            if i + 1 < len(merged):
                e = min(e, merged[i + 1][0])  # a re-strike ends the sounding note
            expected.append((key, v, s, e))
    perf = Performance.from_arrays(pitch, velocity, start, end)
    assert perf.notes == sorted(expected, key=lambda note: (note[2], note[0]))
    assert len(perf) < n or sum(e for *_, e in expected) < end.sum() - 1.0, "no overlap to resolve"


def test_notes_transpose_and_stretch():
    perf = Performance([Note(60, 80, 0.5, 1.0), (55, 70, 0.0, 2.0)])
    assert perf.notes == [(55, 70, 0.0, 2.0), (60, 80, 0.5, 1.0)] and len(perf) == 2 and perf.duration == 2.0
    assert perf.transpose(3).notes == [(58, 70, 0.0, 2.0), (63, 80, 0.5, 1.0)]
    assert perf.stretch(1.05).notes == [(55, 70, 0.0, 2.1), (60, 80, 0.525, 1.05)]
    with pytest.raises(BadInputError, match="transpose by 70 moves pitches 55..60 outside"):
        perf.transpose(70)
    with pytest.raises(BadInputError, match="stretch factor must be a number > 0, got 0"):
        perf.stretch(0)
    assert Performance().duration == 0.0 and len(Performance()) == 0


@pytest.mark.parametrize("seed", range(3))
def test_midi_round_trip_keeps_notes_to_half_a_millisecond(seed, tmp_path):
    perf = _perf(seed)
    perf.to_midi(tmp_path / "a.mid")
    back = Performance.from_midi(tmp_path / "a.mid")
    assert len(back) == len(perf)
    assert np.array_equal(back.pitch, perf.pitch) and np.array_equal(back.velocity, perf.velocity)
    assert np.abs(back.start - perf.start).max() <= 5e-4 + 1e-9
    assert np.abs(back.end - perf.end).max() <= 5e-4 + 1e-9


def _save(tmp_path, tracks, name="pedal.mid"):
    midi = mido.MidiFile(type=1, ticks_per_beat=480)  # 120 bpm default: 960 ticks per second
    for events in tracks:
        track, last = mido.MidiTrack(), 0
        for seconds, message in events:
            tick = round(seconds * 960)
            track.append(message.copy(time=tick - last))
            last = tick
        midi.tracks.append(track)
    midi.save(tmp_path / name)
    return tmp_path / name


def test_sustain_pedal_drums_and_velocity_zero_note_offs(tmp_path):
    on = lambda note, velocity, channel=0: mido.Message("note_on", note=note, velocity=velocity, channel=channel)
    off = lambda note, channel=0: mido.Message("note_off", note=note, channel=channel)
    pedal = lambda value: mido.Message("control_change", control=64, value=value, channel=0)
    piano = [(0.0, on(60, 80)), (0.5, pedal(127)), (1.0, off(60)), (1.0, on(64, 70)), (1.5, off(64)),
             (2.0, on(60, 90)), (2.5, off(60)), (3.0, pedal(0))]
    other = [(3.5, on(65, 50, 1)), (3.5, on(36, 100, 9)), (4.0, on(65, 0, 1)), (4.2, off(36, 9))]
    perf = read_midi(_save(tmp_path, [piano, other]))
    # the pedal holds 60 until it is re-struck at 2.0 and 64 until the pedal lifts at 3.0;
    # the drum channel is dropped and a note-on of velocity 0 ends 65
    assert perf.notes == [(60, 80, 0.0, 2.0), (64, 70, 1.0, 3.0), (60, 90, 2.0, 3.0), (65, 50, 3.5, 4.0)]


def test_notes_never_released_are_dropped_as_pretty_midi_drops_them(tmp_path):
    on = lambda note: mido.Message("note_on", note=note, velocity=80)
    perf = read_midi(_save(tmp_path, [[(0.0, on(60)), (0.5, on(62)), (1.0, mido.Message("note_off", note=62)),
                                       (1.5, mido.Message("control_change", control=1, value=3))]]))
    assert perf.notes == [(62, 80, 0.5, 1.0)]


def test_damaged_midi_files_give_one_clear_error_or_a_performance(tmp_path):
    good = tmp_path / "good.mid"
    _perf(0).to_midi(good)
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    outcomes = {"performance": 0, "error": 0}
    variants = [data[:cut] for cut in rng.integers(0, len(data), 40)]
    for _ in range(40):
        broken = bytearray(data)
        for i in rng.integers(0, len(data), 3):
            broken[i] = int(rng.integers(0, 256))
        variants.append(bytes(broken))
    variants += [b"", b"MThd", b"not a midi file at all", bytes(range(256))]
    for k, blob in enumerate(variants):
        path = tmp_path / f"bad{k}.mid"
        path.write_bytes(blob)
        try:
            perf = read_midi(path)
        except BadInputError as error:
            message = str(error)
            assert str(path) in message and "not a readable MIDI file" in message and "\n" not in message
            outcomes["error"] += 1
        else:
            assert isinstance(perf, Performance)
            outcomes["performance"] += 1
    assert outcomes["error"] >= 20  # most truncations are detected


def test_missing_midi_file_and_folder(tmp_path):
    with pytest.raises(BadInputError, match="MIDI file .*nope.mid does not exist"):
        read_midi(tmp_path / "nope.mid")
    with pytest.raises(BadInputError, match="is not a file"):
        read_midi(tmp_path)


def test_midi_reading_imports_no_performance_so_no_circle_remains():
    """performance.py imports midi.py at its top; midi.py and its loops import neither
    performance.py nor anything that does, not even inside a function (issue 23)."""
    import ast
    from pathlib import Path

    import etude.music.midi as midi_module
    import etude.music.performance as performance_module

    def imported(module) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        return names

    from etude.music import midi_rules

    assert "etude.music.midi" in imported(performance_module)
    for module in (midi_module, midi_rules):
        assert not {name for name in imported(module) if name.startswith("etude.music")} - {"etude.music.midi_rules"}
