"""Helper of the MIDI-folder tests: random performances written as MIDI files
(``from tests.music.midi_folders import ...``; pytest puts the repository root on ``sys.path``)."""

from __future__ import annotations


def write_performances(root, count: int = 6, seed: int = 0, notes: int = 30, prefix: str = "piece"):
    """``count`` random piano performances (pitches 40-89, ~6 s) as MIDI files under ``root``,
    every other one in a subfolder; returns their paths."""
    import numpy as np

    from etude.music import Performance

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        start = np.sort(rng.uniform(0.0, 6.0, notes))
        performance = Performance.from_arrays(rng.integers(40, 90, notes), rng.integers(10, 127, notes), start,
                                              start + rng.uniform(0.05, 1.0, notes))
        path = root / ("sub" if i % 2 else "") / f"{prefix}{i}.mid"
        performance.to_midi(path)
        paths.append(path)
    return paths

