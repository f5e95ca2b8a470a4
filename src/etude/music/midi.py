"""MIDI files <-> note arrays: pretty_midi's note pairing and note_seq's sustain pedal, compiled.

The reader parses the bytes itself, once (``etude.music.midi_rules``, compiled by numba): the
events of each track as mido reads them, notes paired as ``pretty_midi`` pairs them, the pedal
as ``note_seq`` applies it. pretty_midi and note_seq are the tests' references
(``tests/music/test_midi_parity.py``: notes equal to 1 ms, their 388-event encoding equal
token for token, on music21 pieces outside Bach, edge-case files and random files); symusic,
whose parse it is timed against (``benchmarks/midi_read_speed.py``), writes the files.

Reading, rule by rule:

- **Pairing** is pretty_midi's, per track, channel and key, across program changes: a note-off
  (or velocity-0 note-on) ends every open note of its key begun at an earlier tick; the notes
  begun at its own tick stay open only if it ended an earlier one (so note-on, note-off,
  note-on of one key at one tick keeps the second note, and a lone zero-length note is
  dropped); a note-on never followed by a note-off is dropped.
- **Time** follows the tempo map (tempo events of every track, the last of one tick winning;
  pretty_midi reads track 1's, where the standard puts them). SMPTE time division is refused.
- **Sustain** is note_seq's ``apply_sustain_control_changes`` per pretty_midi instrument
  (program, channel, track): while CC64 >= 64, a released note sounds on until the pedal
  lifts or its key is struck again; a note struck again at its own onset is dropped; notes the
  pedal still holds at the end end at the file's last note or pedal event. A pedal pressed
  before a channel's first note counts for the instruments of that channel and track created
  after it, whatever their program, as pretty_midi files such "straggler" events.
- **Drums and programs**: MIDI channel 10 (drums) is dropped; every other channel and program
  is one piano (``Performance`` then keeps one sounding note per key).
- **Structure**: the header chunk may be longer than 6 bytes (its extra bytes are skipped);
  chunks of other types between tracks are skipped; a track may lack its end-of-track event.

Refused in one line (``BadInputError``, exit 2 at the command line): a file over
``MAX_MIDI_BYTES`` (checked before reading it), no ``MThd`` header, the tracks the header
announces missing or cut short, bytes after the header that are no chunk (zero padding at the
end is allowed), an event cut by its
track's end, a data byte above 127, running status with no status before it, an undefined
status byte, a tempo of 0, a tick past ``2**31 - 1`` or an event later than ``MAX_SECONDS``.
Work and memory are linear in the file's size: the reader holds int64 arrays of one row per
3 bytes of track data, at worst about 34 bytes of memory per byte of file (269 MB measured for an
8 MiB file of 2.8M note-ons of one key closed by one note-off, read in 2.8 s on a loaded CPU).

Writing: one piano track (program 0), 480 ticks per beat at 125 bpm, so 1 tick = 1 ms;
symusic writes note-offs before note-ons at one tick, so re-struck keys survive a round trip.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from etude.errors import BadInputError
from etude.music.midi_rules import ERRORS, compiled
from etude.runtime.files import write_atomic
from etude.runtime.optional import require

__all__ = ["MAX_MIDI_BYTES", "MAX_SECONDS", "READER_VERSION", "read_notes", "write_notes"]

TICKS_PER_BEAT = 480
TEMPO = 480_000  # microseconds per beat: 480 ticks per 0.48 s, 1 ms per tick
MAX_MIDI_BYTES = 8 << 20
"""Larger files are refused before they are read (piano performances take well under 1 MB)."""
MAX_SECONDS = 24 * 3600.0
"""Files with an event later than this (a day) are refused: such lengths come from broken files."""
READER_VERSION = 2
"""Bumped when the notes read from a file may change (token caches key on it)."""


def _fail(path: Path, error: BaseException | str) -> BadInputError:
    if isinstance(error, str):
        return BadInputError(f"{path} is not a readable MIDI file ({error})")
    reason = " ".join(str(error).split())[:100] or type(error).__name__
    return BadInputError(f"{path} is not a readable MIDI file ({type(error).__name__}: {reason})")


def _tracks(data: bytes, path: Path) -> tuple[int, np.ndarray, np.ndarray]:
    """(ticks per beat, begin and end offsets of each track chunk's data) of a whole file."""
    if len(data) < 14 or data[:4] != b"MThd":
        raise _fail(path, "no MThd header")
    length, _, count, division = struct.unpack(">IHHH", data[4:14])
    if length < 6:
        raise _fail(path, f"a header chunk of {length} bytes, expected at least 6")
    if division & 0x8000:
        raise BadInputError(
            f"{path} uses SMPTE time division (frames per second), which etude does not read; "
            "save it with ticks per beat"
        )
    if division == 0:
        raise _fail(path, "0 ticks per beat")
    begins: list[int] = []
    ends: list[int] = []
    at = 8 + length
    while len(begins) < count:
        if at + 8 > len(data):
            found = f"{len(begins)} tracks" if at < len(data) or begins else "none"
            raise _fail(path, f"the header announces {count} tracks, the file holds {found}")
        kind, size = data[at : at + 4], struct.unpack(">I", data[at + 4 : at + 8])[0]
        if not (kind.isascii() and kind.isalpha()):
            raise _fail(path, f"bytes at offset {at} are not a chunk (track {len(begins) + 1} of {count} expected)")
        if at + 8 + size > len(data):
            raise _fail(
                path, f"the {kind.decode()} chunk at offset {at} runs {at + 8 + size - len(data)} bytes past the end"
            )
        if kind == b"MTrk":
            begins.append(at + 8)
            ends.append(at + 8 + size)
        at += 8 + size  # chunks of other types are skipped, as the standard asks
    while at < len(data) and data[at:].strip(b"\0"):  # after the tracks: more chunks or zero padding only
        kind = data[at : at + 4]
        size = struct.unpack(">I", data[at + 4 : at + 8])[0] if at + 8 <= len(data) else len(data)
        if not (kind.isascii() and kind.isalpha()) or at + 8 + size > len(data):
            raise _fail(path, f"{len(data) - at} bytes after the last of the {count} tracks are not a chunk")
        at += 8 + size
    return division, np.array(begins, dtype=np.int64), np.array(ends, dtype=np.int64)


def read_notes(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The notes of a MIDI file as (pitch, velocity, start s, end s) arrays (rules: module docstring).

    Every non-drum note with the sustain pedal applied, as ``Performance`` holds them: one
    sounding note per key, sorted by (start, pitch), ``end > start``.

    :raises BadInputError: when ``path`` is missing, not a file, too large, uses SMPTE time, or
        is not a readable MIDI file (the message says what is wrong).
    """
    file = Path(path)
    if not file.is_file():
        raise BadInputError(
            f"MIDI file {file} does not exist" if not file.exists() else f"MIDI path {file} is not a file"
        )
    try:
        with open(file, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_MIDI_BYTES:
                raise BadInputError(
                    f"{file} is {size / 2**20:.1f} MiB, more than the {MAX_MIDI_BYTES >> 20} MiB a MIDI file may have"
                )
            data = handle.read()
    except OSError as exc:
        raise _fail(file, exc) from exc
    ticks_per_beat, begins, ends = _tracks(data, file)
    scan, sustain, to_seconds, one_note_per_key = compiled()
    error, track, notes, pedals, instruments, tempos, last_tick = scan(
        np.frombuffer(data, dtype=np.uint8), begins, ends
    )
    if error:
        raise _fail(file, f"track {track + 1}: {ERRORS[error]}")
    seconds = to_seconds(np.array([last_tick]), tempos, ticks_per_beat)[0]
    if seconds > MAX_SECONDS:
        raise _fail(file, f"an event at {seconds / 3600:.0f} h, later than the {MAX_SECONDS / 3600:.0f} h allowed")
    end = notes[:, 4]
    if pedals.size and pedals[:, 2].any():
        attached = np.isin(pedals[:, 0], instruments[:, 0])  # a straggler no instrument took is not in the file's notes
        last = max(int(end.max(initial=0)), int(pedals[attached, 1].max(initial=0)))
        keep, end = sustain(notes, pedals, instruments, last)
        notes, end = notes[keep], end[keep]
    start = to_seconds(np.ascontiguousarray(notes[:, 3]), tempos, ticks_per_beat)  # one compiled layout
    stop = to_seconds(np.ascontiguousarray(end), tempos, ticks_per_beat)
    good = stop > start
    return one_note_per_key(notes[good, 1], notes[good, 2], start[good], stop[good])


def write_notes(
    path: str | os.PathLike[str], pitch: np.ndarray, velocity: np.ndarray, start: np.ndarray, end: np.ndarray
) -> None:
    """Write notes (valid ``Performance`` arrays) as a one-track piano MIDI file (1 ms ticks), atomically.

    :raises BadInputError: when ``path`` cannot be written.
    """
    symusic = require("symusic", "music")

    ticks_per_second = TICKS_PER_BEAT * 1_000_000 / TEMPO
    begin = np.round(np.asarray(start) * ticks_per_second).astype(np.int64)
    stop = np.maximum(np.round(np.asarray(end) * ticks_per_second).astype(np.int64), begin + 1)
    score = symusic.Score(TICKS_PER_BEAT)
    score.tempos.append(symusic.Tempo(0, mspq=TEMPO))
    track = symusic.Track(name="", program=0, is_drum=False)
    for s, d, p, v in zip(
        begin.tolist(), (stop - begin).tolist(), np.asarray(pitch).tolist(), np.asarray(velocity).tolist()
    ):
        track.notes.append(symusic.Note(s, d, p, v))
    score.tracks.append(track)
    write_atomic(path, score.dumps_midi(), what="MIDI file")
