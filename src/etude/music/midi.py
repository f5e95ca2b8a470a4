"""MIDI files <-> ``Performance``, with the sustain pedal applied on input.

Library: mido (MIT, pure Python, maintained, no compiled parts). It gives message-level
access, which the sustain rules below need; pretty_midi (built on mido) ignores the pedal, and
symusic's speed is not needed for files of a few thousand notes. Every read failure, whatever
mido raises for a truncated or corrupt file, becomes one ``BadInputError`` naming the file.

Reading (as note_seq's ``apply_sustain_control_changes``): all non-drum channels (MIDI channel
10 is drums) merge into one piano; a note-on of velocity 0 is a note-off; note-offs match the
key's earliest sounding note-on; while CC64 >= 64 (pedal down) on a channel, released notes of
that channel keep sounding until the pedal lifts, and re-striking a key ends its sounding note
(the ``Performance`` rule). Notes still open at the end of the file end at its last message.

Writing: one track, program 0 (piano), 480 ticks per beat at 125 bpm, so 1 tick = 1 ms; at one
tick note-offs come before note-ons, so re-struck keys survive a round trip.
"""

from __future__ import annotations

import os
import secrets
from collections import defaultdict, deque
from pathlib import Path

import numpy as np

from etude.errors import BadInputError
from etude.music.performance import Performance

__all__ = ["read_midi", "write_midi"]

TICKS_PER_BEAT = 480
TEMPO = 480_000  # microseconds per beat: 480 ticks per 0.48 s, 1 ms per tick
_DRUMS = 9  # channel 10, counted from 0


def _open(path: Path):
    import mido

    try:
        midi = mido.MidiFile(path)
        messages = list(midi)  # absolute time through the tempo map; raises on type 2
    except Exception as error:  # mido raises OSError, EOFError, ValueError, KeyError, ... on bad files
        reason = " ".join(str(error).split())[:100] or type(error).__name__
        raise BadInputError(f"{path} is not a readable MIDI file ({type(error).__name__}: {reason})") from error
    return messages


def read_midi(path: str | os.PathLike[str]) -> Performance:
    """Read a MIDI file into a ``Performance`` (see the module docstring for the rules).

    :raises BadInputError: when ``path`` is missing, not a file, or not a readable MIDI file.
    """
    file = Path(path)
    if not file.is_file():
        raise BadInputError(f"MIDI file {file} does not exist" if not file.exists()
                            else f"MIDI path {file} is not a file")
    now = 0.0
    pressed: dict[tuple[int, int], deque] = defaultdict(deque)  # (channel, pitch) -> (start, velocity)
    held: dict[int, list] = defaultdict(list)  # channel -> released notes kept by the pedal
    pedal: dict[int, bool] = defaultdict(bool)
    notes: list[tuple[int, int, float, float]] = []

    def finish(pitch: int, velocity: int, start: float, end: float) -> None:
        if end > start:
            notes.append((pitch, velocity, start, end))

    for message in _open(file):
        now += message.time
        kind = message.type
        if kind not in ("note_on", "note_off", "control_change") or message.channel == _DRUMS:
            continue
        channel = message.channel
        if kind == "control_change":
            if message.control == 64:
                down = message.value >= 64
                if pedal[channel] and not down:
                    for note in held.pop(channel, []):
                        finish(*note[:3], now)
                pedal[channel] = down
        elif kind == "note_on" and message.velocity > 0:
            pressed[(channel, message.note)].append((now, message.velocity))
        elif pressed[(channel, message.note)]:
            start, velocity = pressed[(channel, message.note)].popleft()
            if pedal[channel]:
                held[channel].append((message.note, velocity, start))
            else:
                finish(message.note, velocity, start, now)
    for (_, pitch), queue in pressed.items():
        for start, velocity in queue:
            finish(pitch, velocity, start, now)
    for channel_notes in held.values():
        for pitch, velocity, start in channel_notes:
            finish(pitch, velocity, start, now)
    if not notes:
        return Performance()
    p, v, s, e = zip(*notes)
    return Performance.from_arrays(np.array(p), np.array(v), np.array(s), np.array(e))


def write_midi(performance: Performance, path: str | os.PathLike[str]) -> None:
    """Write ``performance`` as a type-0 piano MIDI file (1 ms ticks), atomically.

    :raises BadInputError: when ``performance`` is not a ``Performance``.
    """
    import mido

    if not isinstance(performance, Performance):
        raise BadInputError(f"performance must be a Performance, got {type(performance).__name__}")
    ticks_per_second = TICKS_PER_BEAT * 1_000_000 / TEMPO
    start = np.round(performance.start * ticks_per_second).astype(np.int64)
    end = np.round(performance.end * ticks_per_second).astype(np.int64)
    end = np.maximum(end, start + 1)
    events = sorted(
        [(int(t), 0, int(p), 0) for t, p in zip(end, performance.pitch)]
        + [(int(t), 1, int(p), int(v)) for t, p, v in zip(start, performance.pitch, performance.velocity)]
    )  # (tick, off before on, pitch, velocity)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO, time=0))
    track.append(mido.Message("program_change", program=0, channel=0, time=0))
    last = 0
    for tick, is_on, pitch, velocity in events:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=velocity if is_on else 0, time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        midi.save(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
