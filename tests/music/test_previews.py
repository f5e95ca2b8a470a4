"""etude.music.previews: the names of a MIDI artifact's previews are those the report embeds."""

from __future__ import annotations

from etude.music.previews import midi_preview_names
from etude.studies.protocol import preview_names


def test_midi_preview_names():
    assert midi_preview_names("samples/tune.mid") == ("samples/tune.preview.wav", "samples/tune.preview.png")
    assert midi_preview_names("a.b.midi") == ("a.b.preview.wav", "a.b.preview.png")
    assert midi_preview_names("x/y.mid") == preview_names("x/y.mid")
