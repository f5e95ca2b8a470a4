"""A folder of piano recordings as WAV files (Dieleman et al. 2018 trained on piano music they gathered
themselves; any recordings will do), read as mono float32 and resampled to the model's rate.

Resampling is polyphase (scipy.signal.resample_poly) by ``rate / g`` up and ``source_rate / g`` down,
``g = gcd(rate, source_rate)``: 44.1 kHz to 16 kHz is up 160, down 441.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np

from etude.data.spec import DatasetSpec
from etude.errors import BadInputError, one_line
from etude.validation import check_int

__all__ = ["PIANO", "SAMPLE_RATE", "load_piano", "piano_files", "read_wav"]

SAMPLE_RATE = 16_000
"""The rate of etude's audio models (etude.audio.render.SAMPLE_RATE; Dieleman et al. 2018 used 16 kHz)."""


def read_wav(path: str | os.PathLike[str], rate: int | None = SAMPLE_RATE) -> np.ndarray:
    """A WAV file as mono float32 in [-1, 1] (channels averaged), resampled to ``rate`` (None: as recorded)."""
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)  # unknown chunks: the samples are still read
            source_rate, data = wavfile.read(path)
    except Exception as exc:  # noqa: BLE001 - scipy's parser fails on broken files in many ways (even UnboundLocalError)
        raise BadInputError(f"{path}: unreadable WAV ({type(exc).__name__}: {one_line(exc)})") from exc
    if source_rate <= 0 or data.size == 0:
        raise BadInputError(f"{path}: unreadable WAV (rate {source_rate} Hz, {data.size} samples)")
    if data.dtype == np.uint8:
        audio = (data.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        audio = data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    else:
        audio = data.astype(np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if rate is None or rate == source_rate:
        return audio
    rate = check_int("rate", rate, 1)
    g = math.gcd(rate, int(source_rate))
    return resample_poly(audio, rate // g, int(source_rate) // g).astype(np.float32)


def piano_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The .wav files under ``folder`` (any depth), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() == ".wav" and p.is_file())


def load_piano(data_dir: str | os.PathLike[str] | None = None, rate: int = SAMPLE_RATE) -> list[np.ndarray]:
    """Every recording of the piano folder, mono float32 at ``rate``, in file-name order."""
    return [read_wav(p, rate) for p in piano_files(PIANO.locate(data_dir))]


def _problem(folder: Path) -> str | None:
    return None if piano_files(folder) else "no .wav files"


def _summary(folder: Path) -> str:
    files = piano_files(folder)
    return f"{len(files)} WAV files ({sum(f.stat().st_size for f in files) / 1e6:.1f} MB)"


PIANO = DatasetSpec(
    name="piano",
    title="piano recordings",
    subdirs=("piano",),
    problem=_problem,
    summary=_summary,
    how="put WAV files of solo piano in DIR/piano (any sample rate) and pass --data-dir DIR",
    expected="any number of WAV files, any sample rate, resampled to 16 kHz",
    used_by="amae full preset: --preset full --data-dir DIR",
)
