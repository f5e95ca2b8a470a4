"""Previews a study writes beside each MIDI artifact, so that the report only embeds files.

For ``tune.mid`` it writes ``tune.preview.png`` (a piano roll) and, where fluidsynth and a
General MIDI soundfont are installed, ``tune.preview.wav`` (16 kHz mono, rendered by
``etude.audio``); ``midi_preview_names`` names them by the report's convention for previews
(``etude.studies.protocol.preview_names``), so the report embeds them without reading MIDI.
"""

from __future__ import annotations

import os
from pathlib import Path

from etude.errors import EtudeError, EtudeWarning, warn_at_caller
from etude.studies.protocol import preview_names

__all__ = ["midi_preview_names", "write_midi_previews"]


def midi_preview_names(midi_name: str) -> tuple[str, str]:
    """Names of the previews of a MIDI artifact: (WAV rendering, piano-roll PNG).

    ``samples/tune.mid`` -> (``samples/tune.preview.wav``, ``samples/tune.preview.png``).
    """
    return preview_names(midi_name)


def write_midi_previews(midi_path: str | os.PathLike[str]) -> list[Path]:
    """Write the piano-roll PNG and (with fluidsynth) the WAV of a MIDI file beside it; return their paths.

    :raises BadInputError: when the MIDI file cannot be read, or a preview cannot be written.
    :warns EtudeWarning: when fluidsynth is installed but fails on this file (no WAV is written).
    """
    from etude.music.performance import Performance
    from etude.music.plots import plot_piano_roll

    midi = Path(midi_path)
    wav_name, png_name = midi_preview_names(midi.name)
    performance = Performance.from_midi(midi)
    plot_piano_roll(performance, midi.with_name(png_name), title=midi.name)
    written = [midi.with_name(png_name)]
    from etude.audio.render import SAMPLE_RATE, fluidsynth_available, render_midi, write_wav

    if fluidsynth_available() and len(performance):
        try:
            audio = render_midi(midi)
        except EtudeError as exc:  # a preview is optional: the study's results do not depend on it
            warn_at_caller(f"no audio preview of {midi.name}: {exc}", EtudeWarning)
        else:
            written.append(write_wav(midi.with_name(wav_name), audio, SAMPLE_RATE))
    return written
