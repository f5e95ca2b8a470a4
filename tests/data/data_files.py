"""Helper of the etude.data tests: tiny datasets written in their real on-disk formats
(``from tests.data.data_files import ...``; pytest puts the repository root on sys.path)."""

from __future__ import annotations

import csv
import gzip
import pickle
import struct
import wave
from pathlib import Path

import mido
import numpy as np

from etude.data.idx import write_idx


def write_mnist(folder: Path, gz: bool = True, n: tuple[int, int] = (6, 4), seed: int = 0) -> dict[str, np.ndarray]:
    """The four IDX files of a tiny MNIST-like set (n[0] training, n[1] test images of 28x28)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, count in (("train", n[0]), ("t10k", n[1])):
        arrays[f"{prefix}-images"] = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        arrays[f"{prefix}-labels"] = (np.arange(count) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", arrays[f"{prefix}-images"])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", arrays[f"{prefix}-labels"])
    return arrays


COLUMNS = ["canonical_composer", "canonical_title", "split", "year", "midi_filename", "audio_filename", "duration"]


def write_midi(path: Path, pitch: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    midi = mido.MidiFile(ticks_per_beat=384)
    track = mido.MidiTrack()
    track.append(mido.Message("note_on", note=pitch, velocity=64, time=0))
    track.append(mido.Message("note_off", note=pitch, velocity=0, time=384))
    midi.tracks.append(track)
    midi.save(path)


def write_maestro(folder: Path, rows: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "maestro-v3.0.0.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for k, (split, name) in enumerate(rows):
            writer.writerow(["Bach", f"Piece {k}", split, 2018, name, name.replace(".midi", ".wav"), 1.5])


ROWS = [
    ("train", "2018/a.midi"),
    ("test", "2018/b.midi"),
    ("train", "2017/c.midi"),
    ("validation", "2017/d.midi"),
]


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int = 2) -> None:
    """Integer PCM with the stdlib: ``samples`` in [-1, 1], (n,) or (n, channels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    if width == 1:
        data = np.clip(np.round(samples * 127 + 128), 0, 255).astype(np.uint8)
    else:
        data = np.round(samples * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(data.tobytes())


CIFAR_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar(folder: Path, rows: int = 3) -> dict[str, np.ndarray]:
    """The six CIFAR-10 batches (``rows`` random images each, labels cycling) and batches.meta, as pickles."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    batches = {}
    for k, name in enumerate(CIFAR_NAMES):
        data = rng.integers(0, 256, (rows, 3072), dtype=np.uint8)
        labels = [(k + i) % 10 for i in range(rows)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data, b"filenames": [b"x.png"] * rows}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = data
    meta = {b"label_names": [b"airplane"], b"num_cases_per_batch": rows}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


NORB_TRAIN = "smallnorb-5x46789x9x18x6x2x96x96-training"
NORB_TEST = "smallnorb-5x01235x9x18x6x2x96x96-testing"


def norb_matrix(magic: int, array: np.ndarray, dtype: str) -> bytes:
    """Header by hand: magic, ndim, max(ndim, 3) sizes padded with 1, all little-endian int32; then the data."""
    dims = list(array.shape) + [1] * (3 - array.ndim)
    return (
        struct.pack("<ii", magic - (1 << 32) if magic >= 1 << 31 else magic, array.ndim)
        + struct.pack(f"<{len(dims)}i", *dims)
        + array.astype(dtype).tobytes()
    )


def write_norb_folder(
    folder: Path, n: int = 4, gz: bool = False, n_test: int | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The six smallNORB files: ``n`` random training stereo pairs 2x96x96 (``n_test`` test pairs, ``n`` when
    None), categories cycling 0..4, random info; {prefix: (dat, cat, info)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, count in ((NORB_TRAIN, n), (NORB_TEST, n if n_test is None else n_test)):
        dat = rng.integers(0, 256, (count, 2, 96, 96), dtype=np.uint8)
        cat = np.arange(count, dtype=np.int32) % 5
        info = rng.integers(0, 18, (count, 4)).astype(np.int32)
        for kind, raw in (
            ("dat", norb_matrix(0x1E3D4C55, dat, "u1")),
            ("cat", norb_matrix(0x1E3D4C54, cat, "<i4")),
            ("info", norb_matrix(0x1E3D4C54, info, "<i4")),
        ):
            path = folder / f"{prefix}-{kind}.mat{'.gz' if gz else ''}"
            path.write_bytes(gzip.compress(raw) if gz else raw)
        arrays[prefix] = (dat, cat, info)
    return arrays


def write_omniglot(root: Path, drawings: int = 3) -> None:
    """images_background: 2 alphabets x 2 characters; images_evaluation: 1 x 1. Character k's drawings have
    ink (0) at row k, column j for drawing j."""
    from PIL import Image

    layout = {"images_background": {"Greek": 2, "Latin": 2}, "images_evaluation": {"Tengwar": 1}}
    k = 0
    for split, alphabets in layout.items():
        for alphabet, characters in alphabets.items():
            for c in range(characters):
                folder = root / split / alphabet / f"character{c + 1:02d}"
                folder.mkdir(parents=True)
                for j in range(drawings):
                    image = Image.new("1", (105, 105), 1)
                    image.putpixel((j, k), 0)
                    image.save(folder / f"{k:04d}_{j + 1:02d}.png")
                k += 1


def write_omniglot_scribbles(root: Path, background: int = 10, evaluation: int = 5, drawings: int = 20) -> None:
    """An Omniglot tree of ``background`` and ``evaluation`` characters (one alphabet each), ``drawings`` 1-bit
    105x105 PNGs per character: character k's drawings are a k-dependent bar with seeded random ink around it."""
    from PIL import Image

    rng = np.random.default_rng(0)
    k = 0
    for split, alphabet, count in (
        ("images_background", "Futurama", background),
        ("images_evaluation", "Atemayar", evaluation),
    ):
        for c in range(count):
            folder = root / split / alphabet / f"character{c + 1:02d}"
            folder.mkdir(parents=True)
            for j in range(drawings):
                paper = np.ones((105, 105), dtype=bool)
                paper[10 + 6 * k : 16 + 6 * k, 10:95] = False
                paper[rng.random((105, 105)) < 0.03] = False
                Image.fromarray(paper).save(folder / f"{k:04d}_{j + 1:02d}.png")
            k += 1
