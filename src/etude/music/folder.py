"""Training crops from a folder of MIDI files: the recipe of ``etude music train --midi-dir``, callable from Python.

Files are tokenized once into the token cache (``etude.music.tokens.tokenize_midi_dir``) and split
by a hash of their relative path, ``held_out`` of them held out. Training crops: ``per_piece``
windows of ``max_tokens - 1`` ids per training file, each transposed by ``-transpose..+transpose``
semitones (the chorales' augmentation, in token space, without the time stretch); held-out crops:
4 per held-out file, at most ``held_crops``. Choi et al. (arXiv:1912.05537, Sec. 4) train on
random windows of MAESTRO performances, transposed, in the same way.

    from etude.music import midi_dir_crops, TransformerAutoencoder, fit
    data = midi_dir_crops("my_midi/", max_tokens=256, per_piece=64)
    fit(model, data.train, steps=2000, batch_size=16, lr=1e-3)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from etude.errors import BadInputError
from etude.validation import check_int, check_number

if TYPE_CHECKING:
    from etude.music.stream import StreamCrops
    from etude.music.tokens import TokenCache

__all__ = ["HELD_CROPS", "FolderCrops", "midi_dir_crops"]

HELD_CROPS = 512
"""Most held-out crops (4 per held-out file up to this)."""


@dataclass
class FolderCrops:
    """Crops of a MIDI folder: ``train``, ``held`` (None when no file is held out), the tokenized folder and sizes."""

    train: StreamCrops
    held: StreamCrops | None
    tokens: TokenCache
    train_files: int
    held_files: int


def midi_dir_crops(
    folder: str | os.PathLike[str],
    *,
    max_tokens: int = 256,
    per_piece: int = 8,
    held_out: float = 0.1,
    seed: int = 0,
    transpose: int = 3,
    held_crops: int = HELD_CROPS,
    cache: str | os.PathLike[str] | None = None,
) -> FolderCrops:
    """Training and held-out crops of the ``.mid``/``.midi`` files under ``folder`` (see the module docstring).

    :raises BadInputError: for a bad setting, a folder without readable files, or every file held out.
    :warns: as ``tokenize_midi_dir`` (skipped files, a rebuilt cache).
    """
    from etude.music.stream import StreamCrops
    from etude.music.tokens import tokenize_midi_dir

    check_number("held_out", held_out, 0, 1, high_open=True)  # before tokenizing the folder
    check_int("per_piece", per_piece, 1)
    check_int("max_tokens", max_tokens, 2)
    check_int("transpose", transpose, 0, 12)
    check_int("held_crops", held_crops, 1)
    tokens = tokenize_midi_dir(folder, cache=cache)
    train, held = tokens.split(held_out)
    if train.size == 0:
        raise BadInputError(
            f"all {len(tokens)} readable files of {folder} fell in the held-out split; add files or lower held_out"
        )
    held_data = (
        StreamCrops(tokens, held, count=min(4 * held.size, held_crops), seed=seed + 1, max_tokens=max_tokens)
        if held.size
        else None
    )
    train_data = StreamCrops(
        tokens, train, count=per_piece * train.size, seed=seed, transpose=transpose, max_tokens=max_tokens
    )
    return FolderCrops(train_data, held_data, tokens, int(train.size), int(held.size))
