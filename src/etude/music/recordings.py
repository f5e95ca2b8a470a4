"""MAESTRO v3 as the transformer_ae study's pieces: each performance with its skyline melody, in the
official split of ``maestro-v3.0.0.csv`` (Choi et al., arXiv:1912.05537, Sec. 4: MAESTRO, melody by
the skyline algorithm; Hawthorne et al. 2019 publish the split)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from etude.music.melody import skyline
from etude.music.performance import Performance, read_midi

__all__ = ["Recording", "maestro_pieces"]


@dataclass(frozen=True)
class Recording:
    """One performance of a MIDI corpus: what `etude.music.crops.make_crops` reads of a piece (no score, no style)."""

    name: str
    split: str
    performance: Performance
    melody: Performance
    """The skyline of the performance (`etude.music.melody.skyline`)."""


def maestro_pieces(data_dir: str | os.PathLike[str] | None = None, limit: int = 0) -> dict[str, list[Recording]]:
    """{'train' | 'validation' | 'test': recordings} in the CSV's order, the first ``limit`` of each split
    (0 = all); MissingDataError when MAESTRO is absent, BadInputError naming a MIDI file that cannot be read."""
    from etude.data.maestro import maestro_splits

    out: dict[str, list[Recording]] = {}
    for split, files in maestro_splits(data_dir or None).items():
        out[split] = []
        for path in files[:limit] if limit else files:
            performance = read_midi(path)
            out[split].append(Recording(path.stem, split, performance, skyline(performance)))
    return out
