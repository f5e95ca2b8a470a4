"""The MIDI reader's loops: track events as mido reads them, notes as pretty_midi pairs them,
the pedal as note_seq applies it. Plain Python over NumPy arrays, compiled by numba on first use.

``scan_tracks`` reads every track chunk in file order, as ``mido.midifiles.read_track`` does
(running status, sysex and other status bytes setting it, meta events not), and pairs notes as
``pretty_midi.PrettyMIDI._load_instruments`` (0.2.11) does, per track, channel and key whatever
the program: a note-off (or a velocity-0 note-on) ends every open note of its key begun at an
earlier tick; the open notes begun at its own tick stay open only if it ended an earlier one,
else they are dropped. A closed note goes to the instrument (program at the note-off, channel,
track). Control changes go where pretty_midi puts them: to that instrument if it exists, else
to the (channel, track)'s "straggler", whose list every instrument created after it shares.

``apply_sustain`` is note_seq's ``sequences_lib.apply_sustain_control_changes`` (0.0.5) per
instrument, with per-key lists in place of its list scans so that the work stays linear.
"""

from __future__ import annotations

import functools

import numpy as np

from etude.runtime.optional import require

__all__ = ["ERRORS", "apply_sustain", "compiled", "one_note_per_key", "scan_tracks", "to_seconds"]

MAX_TICK = (1 << 31) - 1
"""Ticks past this are refused (pretty_midi would need an array of that many times)."""

ERRORS = {
    1: "a track ends inside an event",
    2: "a data byte is above 127",
    3: "running status before any status byte",
    4: "an undefined status byte",
    5: f"a track runs past tick {MAX_TICK}",
    6: "a tempo event is not 3 bytes of a tempo above 0",
}
"""What each error code of ``scan_tracks`` means."""

_DRUMS = 9
_SUSTAIN = 64
_LENGTHS = np.array([2, 2, 2, 2, 1, 1, 2], dtype=np.int64)  # data bytes of status 0x8n..0xEn


def scan_tracks(data, begins, ends):
    """Every track of ``data`` (uint8), chunk ``t`` being ``data[begins[t]:ends[t]]``.

    Returns (error, where, notes, pedals, instruments, tempos, last_tick):

    - ``error``: 0, or a key of ``ERRORS``; ``where``: the track it happened in;
    - ``notes``: int64 [n, 5] of (instrument, pitch, velocity, start tick, end tick) in
      pretty_midi's order, drums left out;
    - ``pedals``: int64 [m, 3] of (control-change list, tick, down) of CC64, in file order;
    - ``instruments``: int64 [k, 2] of (control-change list, is drum);
    - ``tempos``: int64 [j, 2] of (tick, microseconds per beat);
    - ``last_tick``: the last tick of any track.

    It stays one function of about 200 lines: it is one compiled loop over the file's bytes, and
    splitting it into helpers would put calls inside that per-byte loop or leave them to numba's inlining.
    """
    size = 0
    for t in range(begins.size):
        size += ends[t] - begins[t]
    cap = size // 3 + 1  # a note-on takes at least 3 bytes (delta, key, velocity)
    notes = np.empty((cap, 5), np.int64)
    pedals = np.empty((cap, 3), np.int64)
    tempos = np.empty((cap, 2), np.int64)
    instruments = np.empty((cap + 16, 2), np.int64)
    on_tick = np.empty(cap, np.int64)
    on_velocity = np.empty(cap, np.int64)
    on_previous = np.empty(cap, np.int64)
    closing = np.empty(cap, np.int64)
    open_last = np.empty(16 * 128, np.int64)
    instrument_of = np.empty(128 * 16, np.int64)
    straggler = np.empty(16, np.int64)
    program = np.empty(16, np.int64)
    n_notes = n_pedals = n_tempos = n_instruments = n_lists = 0
    last_tick = 0
    open_last[:] = -1
    instrument_of[:] = -1
    straggler[:] = -1
    program[:] = 0
    dirty = False
    for t in range(begins.size):
        if dirty:  # a fresh state per track; tracks of meta events only (65,535 empty ones) skip the reset
            open_last[:] = -1
            instrument_of[:] = -1
            straggler[:] = -1
            program[:] = 0
            dirty = False
        n_on = 0
        at, end = begins[t], ends[t]
        tick = 0
        status = -1
        while at < end:
            delta = 0
            while True:  # variable-length delta time
                if at >= end:
                    return 1, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                byte = int(data[at])
                at += 1
                delta = (delta << 7) | (byte & 0x7F)
                if delta > MAX_TICK:
                    return 5, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                if byte < 0x80:
                    break
            tick += delta
            if tick > MAX_TICK:
                return 5, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
            last_tick = max(last_tick, tick)
            if at >= end:
                return 1, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
            byte = int(data[at])
            at += 1
            first = -1
            if byte < 0x80:
                if status < 0:
                    return 3, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                first = byte
                byte = status
            elif byte != 0xFF:
                status = byte
            if byte == 0xFF or byte == 0xF0 or byte == 0xF7:  # meta (type, length, data) or sysex (length, data)
                kind = -1
                if byte == 0xFF:
                    if at >= end:
                        return 1, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                    kind = int(data[at])
                    at += 1
                length = 0
                while True:
                    if at >= end:
                        return 1, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                    b = int(data[at])
                    at += 1
                    length = (length << 7) | (b & 0x7F)
                    if length > end - at:
                        return 1, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                    if b < 0x80:
                        break
                if kind == 0x51:  # set tempo: 3 bytes, microseconds per beat
                    if length < 3:
                        return 6, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                    value = (int(data[at]) << 16) | (int(data[at + 1]) << 8) | int(data[at + 2])
                    if value == 0:
                        return 6, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                    tempos[n_tempos, 0] = tick
                    tempos[n_tempos, 1] = value
                    n_tempos += 1
                at += length
                continue
            if byte >= 0xF0:  # system common and real-time messages, as mido reads them
                count = -1
                if byte == 0xF1 or byte == 0xF3:
                    count = 1
                elif byte == 0xF2:
                    count = 2
                elif byte == 0xF6 or byte == 0xF8 or byte == 0xFA or byte == 0xFB or byte == 0xFC or byte == 0xFE:
                    count = 0
                if count < 0:
                    return 4, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                count -= 1 if first >= 0 else 0
                if count > end - at:
                    return 1, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                for i in range(max(count, 0)):
                    if data[at + i] > 127:
                        return 2, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                at += max(count, 0)
                continue
            kind = byte >> 4
            channel = byte & 0x0F
            count = _LENGTHS[kind - 8]
            dirty = True
            if first < 0:
                if at >= end:
                    return 1, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                first = int(data[at])
                at += 1
            if first > 127:
                return 2, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
            second = 0
            if count == 2:
                if at >= end:
                    return 1, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
                second = int(data[at])
                at += 1
                if second > 127:
                    return 2, t, notes[:0], pedals[:0], instruments[:0], tempos[:0], last_tick
            if kind == 0x9 and second > 0:  # note-on: open
                key = channel * 128 + first
                on_tick[n_on] = tick
                on_velocity[n_on] = second
                on_previous[n_on] = open_last[key]
                open_last[key] = n_on
                n_on += 1
            elif kind == 0x8 or kind == 0x9:  # note-off: close the key's notes begun earlier
                key = channel * 128 + first
                i = open_last[key]
                if i < 0:
                    continue
                kept = -1
                while i >= 0 and on_tick[i] == tick:  # most recent first: the notes begun at this tick
                    kept = i
                    i = on_previous[i]
                n_close = 0
                while i >= 0:
                    closing[n_close] = i
                    n_close += 1
                    i = on_previous[i]
                if n_close > 0 and kept >= 0:
                    on_previous[kept] = -1
                else:
                    open_last[key] = -1
                if n_close == 0:
                    continue
                slot = program[channel] * 16 + channel
                instrument = instrument_of[slot]
                if instrument < 0:  # pretty_midi's __get_instrument(create_new=1)
                    instrument = n_instruments
                    n_instruments += 1
                    instrument_of[slot] = instrument
                    if straggler[channel] >= 0:
                        instruments[instrument, 0] = straggler[channel]
                    else:
                        instruments[instrument, 0] = n_lists
                        n_lists += 1
                    instruments[instrument, 1] = 1 if channel == _DRUMS else 0
                if channel == _DRUMS:
                    continue
                for j in range(n_close - 1, -1, -1):  # oldest first, as pretty_midi appends them
                    i = closing[j]
                    notes[n_notes, 0] = instrument
                    notes[n_notes, 1] = first
                    notes[n_notes, 2] = on_velocity[i]
                    notes[n_notes, 3] = on_tick[i]
                    notes[n_notes, 4] = tick
                    n_notes += 1
            elif kind == 0xC:
                program[channel] = first
            elif kind == 0xB or kind == 0xE:  # control change, pitch bend: __get_instrument(create_new=0)
                instrument = instrument_of[program[channel] * 16 + channel]
                if instrument >= 0:
                    target = instruments[instrument, 0]
                elif straggler[channel] >= 0:
                    target = straggler[channel]
                else:
                    target = n_lists
                    straggler[channel] = n_lists
                    n_lists += 1
                if kind == 0xB and first == _SUSTAIN:
                    pedals[n_pedals, 0] = target
                    pedals[n_pedals, 1] = tick
                    pedals[n_pedals, 2] = 1 if second >= 64 else 0
                    n_pedals += 1
    return 0, -1, notes[:n_notes], pedals[:n_pedals], instruments[:n_instruments], tempos[:n_tempos], last_tick


def apply_sustain(notes, pedals, instruments, last):
    """note_seq's sustain pedal on ``notes`` (``scan_tracks``' rows); returns (keep, end ticks).

    Per instrument, events sort by (tick, kind) with pedal down 0, up 1, note-on 2, note-off 3,
    ties in note order and file order. While the instrument's pedal is down a released note
    sounds on; lifting it ends the released notes; a note-on ends every sounding note of its key
    (a note struck again at its own onset is dropped); notes still held end at ``last``.

    It stays one function: it is one compiled loop over the sorted events, and splitting it into
    helpers would put calls inside that per-event loop or leave them to numba's inlining.
    """
    n = notes.shape[0]
    keep = np.ones(n, np.bool_)
    end = notes[:, 4].copy()
    state = np.zeros(n, np.int64)  # 0 silent, 1 sounding, 2 released under the pedal, 3 done
    by_instrument = np.argsort(notes[:, 0], kind="mergesort")
    by_list = np.argsort(pedals[:, 0], kind="mergesort")
    lists = instruments[:, 0].max() + 2 if instruments.shape[0] else 1
    list_begin = np.searchsorted(pedals[by_list, 0], np.arange(lists))
    head = np.empty(128, np.int64)
    chain = np.empty(n, np.int64)
    released = np.empty(n, np.int64)
    a = 0
    while a < n:
        instrument = notes[by_instrument[a], 0]
        b = a
        while b < n and notes[by_instrument[b], 0] == instrument:
            b += 1
        cc = instruments[instrument, 0]
        lo, hi = list_begin[cc], list_begin[cc + 1]
        down_any = False
        for j in range(lo, hi):
            down_any = down_any or pedals[by_list[j], 2] == 1
        if not down_any:
            a = b
            continue
        count = b - a
        m = 2 * count + hi - lo
        order = np.empty(m, np.int64)
        key = np.empty(m, np.int64)
        for j in range(count):
            i = by_instrument[a + j]
            key[j] = (notes[i, 3] * 4 + 2) * m + j
            order[j] = i
            key[count + j] = (notes[i, 4] * 4 + 3) * m + j
            order[count + j] = n + i
        for j in range(hi - lo):
            p = by_list[lo + j]
            key[2 * count + j] = (pedals[p, 1] * 4 + 1 - pedals[p, 2]) * m + j
            order[2 * count + j] = -1 - p
        sequence = order[np.argsort(key)]
        head[:] = -1
        n_released = 0
        down = False
        for event in sequence:
            if event < 0:
                p = -1 - event
                down = pedals[p, 2] == 1
                if not down:
                    time = pedals[p, 1]
                    for r in range(n_released):
                        i = released[r]
                        if state[i] == 2:
                            end[i] = time
                            state[i] = 3
                    n_released = 0
            elif event < n:  # note-on
                i = event
                if down:
                    j = head[notes[i, 1]]
                    while j >= 0:
                        if state[j] == 1 or state[j] == 2:
                            end[j] = notes[i, 3]
                            state[j] = 3
                            if notes[j, 3] == notes[i, 3]:
                                keep[j] = False
                        j = chain[j]
                    head[notes[i, 1]] = -1
                state[i] = 1
                chain[i] = head[notes[i, 1]]
                head[notes[i, 1]] = i
            else:  # note-off
                i = event - n
                if state[i] == 1:
                    if down:
                        state[i] = 2
                        released[n_released] = i
                        n_released += 1
                    else:
                        state[i] = 3
        for r in range(n_released):
            i = released[r]
            if state[i] == 2:
                end[i] = last
                state[i] = 3
        a = b
    return keep, end


def to_seconds(ticks, tempos, ticks_per_beat):
    """Ticks to seconds through the tempo map ``tempos`` ((tick, microseconds per beat) rows in
    file order; 120 bpm before the first, the last of one tick winning)."""
    order = np.argsort(tempos[:, 0], kind="mergesort")
    k = order.size
    at = np.zeros(k + 1, np.int64)
    scale = np.full(k + 1, 0.5 / ticks_per_beat)
    for j in range(k):
        at[j + 1] = tempos[order[j], 0]
        scale[j + 1] = tempos[order[j], 1] / 1e6 / ticks_per_beat
    begin = np.zeros(k + 1)
    for j in range(1, k + 1):
        begin[j] = begin[j - 1] + (at[j] - at[j - 1]) * scale[j - 1]
    segment = np.searchsorted(at, ticks, side="right") - 1
    out = np.empty(ticks.size)
    for i in range(ticks.size):
        j = segment[i]
        out[i] = begin[j] + (ticks[i] - at[j]) * scale[j]
    return out


def one_note_per_key(pitch, velocity, start, end):
    """``etude.music.performance._one_note_per_key`` in one pass: notes of one key struck
    together become one (the longest end, the loudest velocity), a re-struck key ends its note at
    the new onset; returns the notes sorted by (start, pitch)."""
    n = pitch.size
    by_start = np.argsort(start, kind="mergesort")
    first = np.zeros(129, np.int64)
    for i in range(n):
        first[pitch[i] + 1] += 1
    for key in range(128):
        first[key + 1] += first[key]
    by_key = np.empty(n, np.int64)
    for i in by_start:  # a stable counting sort by pitch: by pitch, then start
        by_key[first[pitch[i]]] = i
        first[pitch[i]] += 1
    p = np.empty(n, np.int64)
    v = np.empty(n, np.int64)
    s = np.empty(n)
    e = np.empty(n)
    m = 0
    for i in by_key:
        if m > 0 and p[m - 1] == pitch[i] and s[m - 1] == start[i]:
            v[m - 1] = max(v[m - 1], velocity[i])
            e[m - 1] = max(e[m - 1], end[i])
        else:
            p[m], v[m], s[m], e[m] = pitch[i], velocity[i], start[i], end[i]
            m += 1
    for j in range(m - 1):
        if p[j] == p[j + 1] and s[j + 1] < e[j]:
            e[j] = s[j + 1]
    order = np.argsort(s[:m], kind="mergesort")  # ties stay in pitch order
    return p[order], v[order], s[order], e[order]


@functools.cache
def compiled():
    """(scan_tracks, apply_sustain, to_seconds, one_note_per_key) compiled by numba (cached on
    disk beside this file)."""
    numba = require("numba", "music")
    return tuple(
        numba.njit(cache=True, nogil=True)(f) for f in (scan_tracks, apply_sustain, to_seconds, one_note_per_key)
    )
