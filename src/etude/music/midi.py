"""MIDI files <-> ``Performance`` through symusic, with pretty_midi's note pairing and note_seq's pedal.

Library: symusic (MIT, C++ core, maintained). It parses the files of
``benchmarks/midi_read_speed.py`` thousands of times faster than mido; with the rules below in
NumPy on its notes, the reader is about 60x faster there than the mido reader it replaced, and
pretty_midi (built on mido) is about as slow as that one. pretty_midi and note_seq are the
tests' references. Every failure to read or write becomes one ``BadInputError`` naming the file.

Reading, rule by rule:

- **Pairing** is pretty_midi's (``PrettyMIDI._load_instruments``), per track, channel and key:
  a note-off ends every sounding note of its key that began at an earlier tick; a note-on at
  the note-off's own tick keeps sounding only if the note-off ended an earlier note, so a
  zero-length note (note-on, then note-off at one tick) is dropped; a note-on never followed
  by a note-off is dropped. symusic pairs first-in-first-out and drops the notes it cannot
  close, so the reader adds note-offs of every key far past each track's end (a symusic pair
  ending there had no note-off) and re-pairs the note-ons and note-offs that symusic saw.
  symusic's pairs do not tell the order of a key's note-on and note-off at one tick: the
  reader takes note-offs first (as pretty_midi and music21 write them), except those symusic
  matched to that tick's note-on. So pretty_midi can differ where a note-on then a note-off of
  one key at one tick meet a same-key note that a missing note-off left for symusic to close
  (a test shows one such file); the random files of the tests avoid only that case.
- **Time** follows the tempo map (tempo events of every track; pretty_midi reads track 1's,
  where the standard puts them). SMPTE time division (frames per second) is refused.
- **Sustain** is note_seq's ``apply_sustain_control_changes`` per track and channel: while
  CC64 >= 64, a released note sounds on until the pedal lifts or its key is struck again; a
  note struck again at its own onset is dropped; notes the pedal still holds at the end end at
  the file's last note or pedal event.
- **Drums and programs**: MIDI channel 10 (drums) is dropped; every other channel and program
  is one piano. The ``Performance`` then keeps one sounding note per key: a re-struck key
  ends its note, notes of one key struck together (unisons of two tracks) become one.

``tests/music/test_music_midi_parity.py`` checks that the notes equal pretty_midi's with
note_seq's sustain (to 1 ms), and that their 388-event encoding equals note_seq's token for
token, on music21 pieces outside Bach, on edge-case files and on random files the tests write.

Writing: one piano track (program 0), 480 ticks per beat at 125 bpm, so 1 tick = 1 ms;
symusic writes note-offs before note-ons at one tick, so re-struck keys survive a round trip.
"""

from __future__ import annotations

import functools
import os
import struct
from pathlib import Path

import numpy as np

from etude.errors import BadInputError
from etude.music.performance import Performance
from etude.runtime.files import write_atomic
from etude.runtime.optional import require

__all__ = ["read_midi", "write_midi"]

TICKS_PER_BEAT = 480
TEMPO = 480_000  # microseconds per beat: 480 ticks per 0.48 s, 1 ms per tick
_SUSTAIN = 64
_FAR = (1 << 28) - 1  # the largest 4-byte delta time: closing note-offs land this far past the end
_DEFAULT_TEMPO = 500_000  # 120 bpm until the first tempo event
_DRUMS = 9  # MIDI channel 10, counted from 0


def _fail(path: Path, error: BaseException | str) -> BadInputError:
    if isinstance(error, str):
        return BadInputError(f"{path} is not a readable MIDI file ({error})")
    reason = " ".join(str(error).split())[:100] or type(error).__name__
    return BadInputError(f"{path} is not a readable MIDI file ({type(error).__name__}: {reason})")


def _check_header(data: bytes, path: Path) -> None:
    if len(data) < 14 or data[:4] != b"MThd":
        raise _fail(path, "no MThd header")
    if data[12] & 0x80:
        raise BadInputError(
            f"{path} uses SMPTE time division (frames per second), which etude does not read; "
            "save it with ticks per beat"
        )
    if data[12] == data[13] == 0:
        raise _fail(path, "0 ticks per beat")


@functools.lru_cache(maxsize=8)
def _closing_tail(rounds: int, deep: tuple[int, ...] = (), deep_rounds: int = 0) -> bytes:
    """What replaces a track's end-of-track: an empty text event, ``_FAR`` ticks, then ``rounds``
    note-offs of every key of every channel but drums (``deep_rounds`` of the pitches ``deep``),
    then end-of-track."""

    def block(pitches) -> bytes:
        return b"\x00".join(bytes([0x80 | c, k, 0]) for c in range(16) if c != _DRUMS for k in pitches)

    far = bytes([0x80 | (_FAR >> 21 & 0x7F), 0x80 | (_FAR >> 14 & 0x7F), 0x80 | (_FAR >> 7 & 0x7F), _FAR & 0x7F])
    blocks = [block(range(128))] * rounds + [block(deep)] * max(deep_rounds - rounds, 0) * bool(deep)
    return b"\xff\x01\x00" + far + b"\x00".join(blocks) + b"\x00\xff\x2f\x00"


def _closing_note_offs(data: bytes, tail: bytes) -> bytes:
    """The file with each track's end-of-track replaced by ``tail`` (``_closing_tail``)."""
    at = 8 + struct.unpack(">I", data[4:8])[0]
    out = [data[:at]]
    while at + 8 <= len(data):
        kind, size = data[at : at + 4], struct.unpack(">I", data[at + 4 : at + 8])[0]
        chunk = data[at + 8 : at + 8 + size]
        if kind == b"MTrk" and len(chunk) == size and chunk.endswith(b"\xff\x2f\x00"):
            chunk = chunk[:-3] + tail
        out.append(kind + struct.pack(">I", len(chunk)) + chunk)
        at += 8 + size
    out.append(data[at:])
    return b"".join(out)


def _parse(data: bytes, path: Path):
    symusic = require("symusic", "music")

    try:
        return symusic.Score.from_midi(data, ttype="tick")
    except Exception as error:  # symusic raises RuntimeError, ValueError, ... on bad files
        raise _fail(path, error) from error


def _tempo_map(score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tick, seconds at that tick, seconds per tick) of each tempo segment; 120 bpm before the first."""
    tempos = score.tempos.numpy()
    at, mspq = tempos["time"].astype(np.int64), tempos["mspq"].astype(np.float64)
    order = np.argsort(at, kind="stable")
    at, mspq = at[order], mspq[order]
    if at.size == 0 or at[0] > 0:
        at, mspq = np.r_[0, at], np.r_[_DEFAULT_TEMPO, mspq]
    scale = mspq / 1e6 / score.ticks_per_quarter
    return at, np.r_[0.0, np.cumsum(np.diff(at) * scale[:-1])], scale


def _seconds(ticks: np.ndarray, tempo_map: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Ticks to seconds through the tempo map."""
    at, begin, scale = tempo_map
    k = np.searchsorted(at, ticks, side="right") - 1
    return begin[k] + (ticks - at[k]) * scale[k]


def _repair(key, velocity, start, end, closed):
    """pretty_midi's pairing of note-ons and note-offs, rebuilt from symusic's FIFO pairs.

    ``key`` tells apart a track's keys (``128 * track + pitch``); ``closed`` is False for a pair
    that symusic closed only with an added note-off (past the end). Each note-on ends at its
    key's first note-off at a later tick; a note-on with none is dropped. Runs of a key holding
    a zero-length pair (a note-off at its note-on's tick) go through ``_close_all``.
    Returns (key, velocity, start, end) in ticks.
    """
    zero = closed & (end == start)
    if zero.any():  # find the runs that hold one: a key's notes until none of them sounds
        order = np.argsort((key << 40) + start, kind="stable")  # same-tick note-ons stay in file order
        key, velocity, start, end, closed, zero = (a[order] for a in (key, velocity, start, end, closed, zero))
        first = np.ones(key.size, dtype=bool)
        first[1:] = key[1:] != key[:-1]
        lift = np.cumsum(first) << 40
        reach = np.maximum.accumulate(end + lift) - lift
        new_run = first.copy()
        new_run[1:] |= start[1:] > reach[:-1]
        run = np.cumsum(new_run)
        slow = np.isin(run, run[zero])
    else:
        slow = zero
    fast = ~slow
    k, v, s = key[fast], velocity[fast], start[fast]
    offs = np.sort(((key << 40) + end)[fast & closed])
    if offs.size:
        index = np.searchsorted(offs, (k << 40) + s, side="right")
        at = offs[np.minimum(index, offs.size - 1)]
        found = (index < offs.size) & (at >> 40 == k)  # the key's first note-off at a later tick, if any
        out = [(k[found], v[found], s[found], at[found] - (k[found] << 40))]
    else:
        out = []
    if slow.any():
        cut = np.flatnonzero(np.diff(run[slow])) + 1
        for p, v, s, e, c in zip(*(np.split(a[slow], cut) for a in (key, velocity, start, end, closed))):
            out.append(_close_all(int(p[0]), v, s, e, c))
    if not out:
        return (np.zeros(0, np.int64),) * 4
    return tuple(np.concatenate(column) for column in zip(*out))


def _close_all(key, velocity, start, end, closed):
    """One run of one key under pretty_midi's rule: a note-off ends every note begun at an earlier tick.

    At one tick: note-offs that symusic matched to earlier notes, then note-ons, then the
    note-offs that it matched to note-ons of that tick.
    """
    events = [(int(s), 1, i, int(v)) for i, (s, v) in enumerate(zip(start, velocity))]
    events += [(int(e), 2 if e == s else 0, i, 0) for i, (s, e, c) in enumerate(zip(start, end, closed)) if c]
    events.sort()
    notes: list[tuple[int, int, int, int]] = []
    sounding: list[tuple[int, int]] = []  # (start tick, velocity)
    for tick, phase, _, v in events:
        if phase == 1:
            sounding.append((tick, v))
            continue
        earlier = [(s, w) for s, w in sounding if s != tick]
        notes.extend((key, w, s, tick) for s, w in earlier)
        sounding = [(s, w) for s, w in sounding if s == tick] if earlier else []
    if not notes:
        return (np.zeros(0, np.int64),) * 4
    return tuple(np.array(column, dtype=np.int64) for column in zip(*notes))


def _sustain(pitch, start, end, pedal_times, pedal_down, last):
    """note_seq's ``apply_sustain_control_changes`` on one track and channel; returns (keep, end)."""
    end = end.copy()
    keep = np.ones(pitch.size, dtype=bool)
    n = pitch.size
    # (time, kind, order): pedal on 0, pedal off 1, note-on 2, note-off 3, as note_seq sorts them
    events = sorted(
        [(s, 2, i) for i, s in enumerate(start.tolist())]
        + [(e, 3, i) for i, e in enumerate(end.tolist())]
        + [(t, 0 if d else 1, n + j) for j, (t, d) in enumerate(zip(pedal_times.tolist(), pedal_down.tolist()))]
    )
    down = False
    active: list[int] = []
    for time, kind, i in events:
        if kind == 0:
            down = True
        elif kind == 1:
            down = False
            still = []
            for j in active:
                if end[j] < time:
                    end[j] = time
                else:
                    still.append(j)
            active = still
        elif kind == 2:
            if down:
                still = []
                for j in active:
                    if pitch[j] == pitch[i]:
                        end[j] = time
                        if start[j] == time:
                            keep[j] = False
                    else:
                        still.append(j)
                active = still
            active.append(i)
        elif not down and i in active:
            active.remove(i)
    for j in active:
        end[j] = last
    return keep, end


def _more_unclosed(key, start, end, closed, rounds: np.ndarray) -> np.ndarray:
    """Pitches of keys that may have more notes symusic could not close than ``rounds[pitch]``
    added note-offs, one of them followed by a note-off (which pretty_midi pairs with it)."""
    keys, counts = np.unique(key[~closed], return_counts=True)
    deep = keys[counts >= rounds[keys & 127]]
    if deep.size == 0:
        return deep
    mine = np.isin(key, deep)
    k, s, e, c = key[mine], start[mine], end[mine], closed[mine]
    first_unclosed = np.full(deep.size, np.iinfo(np.int64).max)
    np.minimum.at(first_unclosed, np.searchsorted(deep, k[~c]), s[~c])
    last_off = np.full(deep.size, -1)
    np.maximum.at(last_off, np.searchsorted(deep, k[c]), e[c])
    return np.unique(deep[last_off > first_unclosed] & 127)


def read_midi(path: str | os.PathLike[str]) -> Performance:
    """Read a MIDI file into a ``Performance`` (see the module docstring for the rules).

    :raises BadInputError: when ``path`` is missing, not a file, uses SMPTE time, or is not a readable MIDI file.
    """
    file = Path(path)
    if not file.is_file():
        raise BadInputError(
            f"MIDI file {file} does not exist" if not file.exists() else f"MIDI path {file} is not a file"
        )
    try:
        data = file.read_bytes()
    except OSError as error:
        raise _fail(file, error) from error
    _check_header(data, file)
    rounds = np.full(128, 2)  # note-offs added per key, by pitch
    while True:  # add note-offs past each track's end until every note-on that matters is closed
        deep = tuple(np.flatnonzero(rounds > 2).tolist())
        score = _parse(_closing_note_offs(data, _closing_tail(2, deep, int(rounds.max()))), file)
        columns = []
        for index, track in enumerate(score.tracks):
            notes = track.notes.numpy()
            if not track.is_drum and notes["time"].size:
                start = notes["time"].astype(np.int64)
                columns.append(
                    (
                        notes["pitch"].astype(np.int64) + 128 * index,
                        notes["velocity"].astype(np.int64),
                        start,
                        start + notes["duration"],
                    )
                )
        if not columns:
            return Performance()
        key, velocity, start, end = (np.concatenate(c) for c in zip(*columns))
        closed = end - start < _FAR // 2
        more = _more_unclosed(key, start, end, closed, rounds) if not closed.all() else ()
        if not len(more):
            break
        rounds[more] = rounds.max() * 4
    key, velocity, start, end = _repair(key, velocity, start, end, closed)
    tempo_map = _tempo_map(score)
    start, end = _seconds(start, tempo_map), _seconds(end, tempo_map)
    pedals = []
    for index, track in enumerate(score.tracks):
        controls = track.controls.numpy()
        cc = controls["number"] == _SUSTAIN
        if cc.any():
            pedals.append(
                (index, _seconds(controls["time"][cc].astype(np.int64), tempo_map), controls["value"][cc] >= 64)
            )
    if any(down.any() for _, _, down in pedals):
        last = max([float(end.max()) if end.size else 0.0] + [float(t.max()) for _, t, _ in pedals])
        keep = np.ones(key.size, dtype=bool)
        for index, times, down in pedals:
            mine = np.flatnonzero(key >> 7 == index)
            if down.any() and mine.size:
                kept, end[mine] = _sustain(key[mine], start[mine], end[mine], times, down, last)
                keep[mine] = kept
        key, velocity, start, end = key[keep], velocity[keep], start[keep], end[keep]
    good = end > start
    return Performance.from_arrays(key[good] & 127, velocity[good], start[good], end[good])


def write_midi(performance: Performance, path: str | os.PathLike[str]) -> None:
    """Write ``performance`` as a one-track piano MIDI file (1 ms ticks), atomically.

    :raises BadInputError: when ``performance`` is not a ``Performance`` or ``path`` cannot be written.
    """
    symusic = require("symusic", "music")

    if not isinstance(performance, Performance):
        raise BadInputError(f"performance must be a Performance, got {type(performance).__name__}")
    ticks_per_second = TICKS_PER_BEAT * 1_000_000 / TEMPO
    start = np.round(performance.start * ticks_per_second).astype(np.int64)
    end = np.maximum(np.round(performance.end * ticks_per_second).astype(np.int64), start + 1)
    score = symusic.Score(TICKS_PER_BEAT)
    score.tempos.append(symusic.Tempo(0, mspq=TEMPO))
    track = symusic.Track(name="", program=0, is_drum=False)
    for s, d, p, v in zip(
        start.tolist(), (end - start).tolist(), performance.pitch.tolist(), performance.velocity.tolist()
    ):
        track.notes.append(symusic.Note(s, d, p, v))
    score.tracks.append(track)
    write_atomic(path, score.dumps_midi(), what="MIDI file")
