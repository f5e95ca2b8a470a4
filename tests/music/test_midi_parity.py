"""MIDI reading against the references: notes as pretty_midi pairs them with note_seq's sustain
pedal, and the 388-event encoding token for token as note_seq's performance encoding.

Files: excerpts of music21 scores outside Bach (written to MIDI by music21, cached for the
session), edge-case files written here with mido and pretty_midi, and random files.
"""

from __future__ import annotations

import mido
import numpy as np
import pytest

from etude.errors import BadInputError
from etude.music import Performance, PerformanceEncoding, read_midi

pretty_midi = pytest.importorskip("pretty_midi")
note_seq = pytest.importorskip("note_seq")
from note_seq import midi_io, performance_lib, sequences_lib  # noqa: E402
from note_seq.performance_encoder_decoder import PerformanceOneHotEncoding  # noqa: E402

ENC = PerformanceEncoding()
PIECES = {  # music21 corpus path -> measures to write (whole movements take music21 10-20 s to write)
    "haydn/opus74no1/movement2": (1, 16),  # the string quartet movement of the issue
    "mozart/k80/movement2": (1, 16),
    "monteverdi/madrigal.3.1": (1, 16),
    "joplin/maple_leaf_rag": (1, 16),
}


@pytest.fixture(scope="session")
def music21_midi(tmp_path_factory) -> dict[str, object]:
    """Excerpts of non-Bach music21 scores as MIDI files written by music21, once per session."""
    from music21 import corpus

    folder = tmp_path_factory.mktemp("music21_midi")
    files = {}
    for name, (first, last) in PIECES.items():
        path = folder / (name.replace("/", "_") + ".mid")
        corpus.parse(name).measures(first, last).write("midi", fp=path)
        files[name] = path
    return files


def _sequence(path) -> object:
    """note_seq's reading (pretty_midi's pairing), its sustain pedal applied, drums dropped."""
    sequence = sequences_lib.apply_sustain_control_changes(midi_io.midi_file_to_note_sequence(str(path)))
    for note in [n for n in sequence.notes if n.is_drum]:
        sequence.notes.remove(note)
    return sequence


def _reference(path) -> Performance:
    """The notes of pretty_midi and note_seq as a ``Performance`` (one sounding note per key)."""
    notes = [(n.pitch, n.velocity, n.start_time, n.end_time) for n in _sequence(path).notes if n.end_time > n.start_time]
    return Performance(notes)


def _note_seq_ids(sequence) -> list[int]:
    """note_seq's performance encoding: 100 steps/s, 32 velocity bins, ids after PAD and EOS."""
    quantized = sequences_lib.quantize_note_sequence_absolute(sequence, 100)
    events = performance_lib.Performance(quantized, num_velocity_bins=32, max_shift_steps=100)
    encoding = PerformanceOneHotEncoding(num_velocity_bins=32, max_shift_steps=100)
    return [encoding.encode_event(event) + PerformanceEncoding.RESERVED for event in events]


def _as_sequence(performance: Performance):
    sequence = note_seq.NoteSequence()
    for pitch, velocity, start, end in performance.notes:
        sequence.notes.add(pitch=pitch, velocity=velocity, start_time=start, end_time=end)
    sequence.total_time = performance.duration
    return sequence


def _assert_same_notes(mine: Performance, reference: Performance) -> None:
    assert len(mine) == len(reference)
    assert np.array_equal(mine.pitch, reference.pitch) and np.array_equal(mine.velocity, reference.velocity)
    assert np.abs(mine.start - reference.start).max(initial=0) <= 1e-3
    assert np.abs(mine.end - reference.end).max(initial=0) <= 1e-3


def _one_key_at_a_time(sequence) -> bool:
    """Whether no two notes of one key overlap (or start together) in note_seq's notes."""
    last: dict[int, float] = {}
    for note in sorted(sequence.notes, key=lambda n: (n.start_time, n.pitch)):
        if note.start_time < last.get(note.pitch, -1.0) or note.end_time <= note.start_time:
            return False
        last[note.pitch] = max(last.get(note.pitch, -1.0), note.end_time)
    return True


# ----------------------------------------------------------------------------- files the tests write

def _save(path, tracks, ticks_per_beat=480):
    """A type-1 file of tracks of (tick, message), in the order given within a tick."""
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track, last = mido.MidiTrack(), 0
        for tick, message in events:
            track.append(message.copy(time=tick - last))
            last = tick
        midi.tracks.append(track)
    midi.save(path)
    return path


def on(note, velocity=80, channel=0):
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def off(note, channel=0, zero_velocity=False):
    if zero_velocity:
        return mido.Message("note_on", note=note, velocity=0, channel=channel)
    return mido.Message("note_off", note=note, channel=channel)


def pedal(value, channel=0):
    return mido.Message("control_change", control=64, value=value, channel=channel)


def tempo(bpm):
    return mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


EDGE_CASES = {
    # a key struck again while it sounds, each note with its own note-off
    "restrike": [[(0, on(60)), (480, on(60, 90)), (960, off(60)), (1440, off(60)), (1500, on(62)), (1600, off(62))]],
    # struck again with one note-off for both (sloppy writers): first-in-first-out leaves one sounding
    "restrike_one_off": [[(0, on(60)), (240, on(60, 90)), (480, off(60)), (600, on(60)), (960, off(60))]],
    # same-key notes overlapping across channels and tracks, and unisons struck together
    "overlaps": [[(0, on(60)), (0, on(64)), (240, on(60, 100, 1)), (480, off(60)), (720, off(60, 1)),
                  (960, off(64))],
                 [(120, on(64, 50, 2)), (600, off(64, 2, True)), (700, on(67)), (700, on(67, 99)), (900, off(67)),
                  (950, off(67))]],
    # zero-length notes: note-on then note-off at one tick; note-off first (pretty_midi's writer)
    "zero_length": [[(0, on(60)), (0, off(60)), (240, on(62)), (480, off(62)), (480, off(62)), (720, off(64)),
                     (720, on(64)), (960, on(64)), (1200, off(64)), (1300, on(65)), (1300, off(65, 0, True))]],
    # the pedal: released notes sound on, a re-struck key ends its note, the pedal held to the end
    "pedal_held_to_the_end": [[(0, on(60)), (100, pedal(127)), (240, off(60)), (300, on(64)), (480, off(64)),
                               (600, on(60, 100)), (700, off(60)), (800, pedal(0)), (900, on(67)), (960, pedal(100)),
                               (1000, off(67)), (1100, on(67, 50)), (1100, off(67)), (1200, on(71)), (1300, off(71)),
                               (1400, on(72, 30)), (1400, on(72, 90)), (1450, off(72)), (1460, off(72)),
                               (1420, on(74, 100)), (1420, on(74, 20)), (1450, off(74)),
                               (1500, on(48)), (1600, off(48))]],
    # tempo changes in the first track, notes in the second
    "tempo_changes": [[(0, tempo(90)), (700, tempo(150)), (1500, tempo(40)), (1500, tempo(200))],
                      [(0, on(60)), (480, off(60)), (600, on(62)), (1000, off(62)), (1400, on(64)), (2000, off(64))]],
    # several tracks, programs and channels; channel 10 is drums
    "tracks_and_drums": [[(0, mido.Message("program_change", program=40, channel=1)), (0, on(72, 70, 1)),
                          (480, off(72, 1))],
                         [(0, on(36, 120, 9)), (240, off(36, 9)), (240, on(60)), (720, off(60)),
                          (300, mido.Message("program_change", program=5)), (800, on(61)), (900, off(61))],
                         [(100, pedal(127, 9)), (100, on(38, 100, 9)), (200, off(38, 9)), (2000, pedal(0, 9))]],
}


@pytest.fixture(scope="module")
def edge_files(tmp_path_factory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("edge_midi")
    files = {name: _save(folder / f"{name}.mid", [sorted(t, key=lambda e: e[0]) for t in tracks])
             for name, tracks in EDGE_CASES.items()}
    # pretty_midi's own writer, with a zero-length note (written note-off first) and overlapping notes
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(80, 60, 0.0, 1.0), pretty_midi.Note(90, 60, 0.5, 1.5),
                   pretty_midi.Note(70, 62, 1.0, 1.0), pretty_midi.Note(70, 62, 2.0, 2.5),
                   pretty_midi.Note(60, 64, 0.25, 0.25)]
    piano.control_changes = [pretty_midi.ControlChange(64, 127, 1.2), pretty_midi.ControlChange(64, 0, 2.2)]
    pm.instruments.append(piano)
    pm.write(str(folder / "pretty_midi_writer.mid"))
    files["pretty_midi_writer"] = folder / "pretty_midi_writer.mid"
    return files


def test_edge_cases_are_what_they_claim(edge_files):
    """The edge-case files do hold what they are named for (else the parity tests prove little)."""
    sequence = _sequence(edge_files["restrike_one_off"])
    assert sorted((n.start_time, n.end_time) for n in sequence.notes)[:2] == [(0.0, 0.5), (0.25, 0.5)]
    held = {n.pitch: n.end_time for n in _sequence(edge_files["pedal_held_to_the_end"]).notes}
    assert held[71] == 1600 / 960  # the pedal, still down, holds 71 to the file's last event
    # two note-ons of one key at one tick under the pedal: note_seq keeps the later one
    assert [n.velocity for n in _sequence(edge_files["pedal_held_to_the_end"]).notes if n.pitch in (72, 74)] == [90, 20]
    drums = midi_io.midi_file_to_note_sequence(str(edge_files["tracks_and_drums"]))
    assert any(n.is_drum for n in drums.notes) and not any(p == 36 for p in read_midi(edge_files["tracks_and_drums"]).pitch)
    times = [n.start_time for n in midi_io.midi_file_to_note_sequence(str(edge_files["tempo_changes"])).notes]
    assert times == pytest.approx([0.0, 600 / 480 * 60 / 90 + 0.0, 700 / 480 * 60 / 90 + 700 / 480 * 60 / 150])


@pytest.mark.parametrize("name", [*EDGE_CASES, "pretty_midi_writer"])
def test_edge_case_notes_equal_pretty_midi_with_note_seq_sustain(edge_files, name):
    _assert_same_notes(read_midi(edge_files[name]), _reference(edge_files[name]))


@pytest.mark.parametrize("name", list(PIECES))
def test_music21_notes_equal_pretty_midi(music21_midi, name):
    mine = read_midi(music21_midi[name])
    assert len(mine) > 100
    _assert_same_notes(mine, _reference(music21_midi[name]))


@pytest.mark.parametrize("name", list(PIECES))
def test_music21_tokens_equal_note_seq(music21_midi, name):
    path = music21_midi[name]
    mine = ENC.encode(read_midi(path)).tolist()
    # note_seq's reading, one sounding note per key (the Performance rule), note_seq's encoding
    assert mine == _note_seq_ids(_as_sequence(_reference(path)))
    sequence = _sequence(path)
    if _one_key_at_a_time(sequence):  # nothing for the Performance rule to do: note_seq end to end
        assert mine == _note_seq_ids(sequence)


@pytest.mark.parametrize("name", [*EDGE_CASES, "pretty_midi_writer"])
def test_edge_case_tokens_equal_note_seq(edge_files, name):
    mine = ENC.encode(read_midi(edge_files[name])).tolist()
    assert mine == _note_seq_ids(_as_sequence(_reference(edge_files[name])))
    sequence = _sequence(edge_files[name])
    if _one_key_at_a_time(sequence):
        assert mine == _note_seq_ids(sequence)


def test_onsets_within_a_step_keep_note_seqs_order():
    # 64 before 60 in time, both in step 0; 60 struck twice within step 30 (the first re-struck)
    perf = Performance([(64, 80, 0.001, 0.2), (60, 40, 0.004, 0.2), (60, 100, 0.296, 0.3), (60, 20, 0.3004, 0.5)])
    sequence = _as_sequence(perf)
    assert ENC.encode(perf).tolist() == _note_seq_ids(sequence)
    names = [ENC.describe(i) for i in ENC.encode(perf)]
    assert names[:4] == ["velocity 20", "note_on 64", "velocity 10", "note_on 60"]
    assert names.count("note_on 60") == 3  # the two onsets in one step give two note-ons, as in note_seq
    # decoding keeps one note for the two onsets: the later end, the louder velocity
    assert ENC.decode(ENC.encode(perf)) == ENC.quantize(perf)
    assert ENC.quantize(perf).notes[-1] == (60, 97, 0.3, 0.5)


def _random_file(path, seed: int):
    """Random note-ons, note-offs (some as velocity-0 note-ons) and pedal on keys 60-62 of two
    channels in two tracks: same-key overlaps, missing and stray note-offs; on key 64, notes
    with their own note-offs and zero-length notes (note-on, then note-off at one tick)."""
    rng = np.random.default_rng(seed)
    tracks = []
    for _ in range(2):
        events, free = [], 0
        for tick in np.sort(rng.choice(4000, 150, replace=False)).tolist():
            key, channel = int(rng.integers(60, 63)), int(rng.integers(0, 2))
            kind = rng.choice(["off", "on", "pedal", "own", "zero"], p=[0.35, 0.35, 0.1, 0.1, 0.1])
            if kind == "off":
                events.append((tick, off(key, channel, bool(rng.integers(2)))))
            elif kind == "on":
                events.append((tick, on(key, int(rng.integers(1, 128)), channel)))
            elif kind == "pedal":
                events.append((tick, pedal(int(rng.choice([0, 127])), channel)))
            elif tick >= free:  # key 64: one note at a time, each with its own note-off
                end = tick if kind == "zero" else tick + int(rng.integers(1, 200))
                events += [(tick, on(64, int(rng.integers(1, 128)))), (end, off(64))]
                free = end + 1
        tracks.append(sorted(events, key=lambda e: e[0]))
    return _save(path, tracks, ticks_per_beat=96)


@pytest.mark.parametrize("seed", range(6))
def test_random_files_equal_pretty_midi_and_note_seq(tmp_path, seed):
    path = _random_file(tmp_path / "random.mid", seed)
    mine, reference = read_midi(path), _reference(path)
    assert len(mine) > 50
    _assert_same_notes(mine, reference)
    assert ENC.encode(mine).tolist() == _note_seq_ids(_as_sequence(reference))


def test_first_in_first_out_pairing_would_fail_these_tests(tmp_path):
    """The old reader's rule (a note-off ends the key's earliest note) differs from pretty_midi's
    on the random files: the parity tests above can fail."""
    differ = 0
    for seed in range(6):
        path = _random_file(tmp_path / f"random{seed}.mid", seed)
        fifo = {}
        notes = []
        for track in mido.MidiFile(path).tracks:
            tick = 0
            for message in track:
                tick += message.time
                if message.type not in ("note_on", "note_off"):
                    continue
                queue = fifo.setdefault((id(track), message.channel, message.note), [])
                if message.type == "note_on" and message.velocity:
                    queue.append((tick, message.velocity))
                elif queue:
                    start, velocity = queue.pop(0)
                    if tick > start:
                        notes.append((message.note, velocity, start / 192, tick / 192))
        reference = _reference(path)
        differ += Performance(notes) != reference
    assert differ >= 5


def test_a_zero_length_note_after_an_unclosed_one_is_pretty_midis(tmp_path):
    """At 300 a zero-length note (note-on, then note-off) meets no open note: pretty_midi drops
    it (the reader built on symusic's first-in-first-out pairs kept it until 400)."""
    path = _save(tmp_path / "ambiguous.mid", [[(0, on(60)), (100, on(60)), (200, off(60)), (300, on(60)),
                                                (300, off(60)), (400, off(60))]])
    assert [(n.start, n.end) for n in _reference(path)] == [(0.0, 100 / 960), (100 / 960, 200 / 960)]
    assert [(n.start, n.end) for n in read_midi(path)] == [(0.0, 100 / 960), (100 / 960, 200 / 960)]


def test_smpte_time_division_is_refused_in_one_line(tmp_path, edge_files):
    data = bytearray(edge_files["restrike"].read_bytes())
    data[12:14] = bytes([0xE7, 40])  # -25 frames per second, 40 ticks per frame
    (tmp_path / "smpte.mid").write_bytes(bytes(data))
    with pytest.raises(BadInputError, match=r"smpte.mid uses SMPTE time division .*; save it with ticks per beat$"):
        read_midi(tmp_path / "smpte.mid")
    data[12:14] = bytes([0, 0])
    (tmp_path / "zero.mid").write_bytes(bytes(data))
    with pytest.raises(BadInputError, match=r"zero.mid is not a readable MIDI file \(0 ticks per beat\)$"):
        read_midi(tmp_path / "zero.mid")
