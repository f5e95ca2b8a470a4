"""MIDI and performances to 16 kHz mono audio with fluidsynth, cached by content hash; WAV I/O.

Data for Dieleman, van den Oord, Simonyan (NeurIPS 2018, arXiv:1806.10474): the paper trains on
solo piano recordings; here the music21 Bach chorales are played in sampled styles
(`etude.music.load_corpus`) and rendered with a General MIDI piano soundfont (Debian `fluidsynth` and
`fluid-soundfont-gm`, falling back to `timgm6mb-soundfont`; ``$ETUDE_SOUNDFONT`` chooses). Rendered
audio is cached under ``$ETUDE_CACHE/audio`` with a content hash (MIDI bytes, sample rate, gain, the
soundfont's bytes) in the name; a corrupt entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import wave
import zipfile
from pathlib import Path

import numpy as np

from etude.errors import BadInputError, MissingDependencyError
from etude.runtime.cache import CacheMismatch, cache_dir, check_entry, load_arrays, save_arrays
from etude.runtime.files import write_atomic
from etude.validation import check_int

__all__ = [
    "SAMPLE_RATE",
    "SOUNDFONTS",
    "find_soundfont",
    "fluidsynth_available",
    "soundfont_identity",
    "render_midi",
    "render_performance",
    "piano_dataset",
    "read_wav",
    "write_wav",
    "midi_preview",
]

SAMPLE_RATE = 16_000
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
)
"""Soundfonts tried in order after ``$ETUDE_SOUNDFONT``: FluidR3_GM's sampled grand piano (Debian
`fluid-soundfont-gm`, 141 MB) first, then TimGM6mb (6 MB, a thinner piano)."""
_INSTALL = "install it with `apt-get install fluidsynth fluid-soundfont-gm` (Debian/Ubuntu; or timgm6mb-soundfont)"


def find_soundfont() -> Path:
    """``$ETUDE_SOUNDFONT`` or the first installed General MIDI soundfont of `SOUNDFONTS`."""
    for candidate in (os.environ.get("ETUDE_SOUNDFONT"), *SOUNDFONTS):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise MissingDependencyError(f"no General MIDI soundfont found; {_INSTALL}, or set ETUDE_SOUNDFONT to an .sf2 file")


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _soundfont_digest(path: Path) -> str:
    """SHA-256 of a soundfont's bytes (memoized per path, size and mtime): render caches key on it, so
    another soundfont, or a changed one under the same name, renders anew."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def soundfont_identity() -> dict[str, str] | None:
    """The soundfont that renders would use: its resolved path and the SHA-256 of its bytes (None when
    none is installed), so that a resume with another soundfont, or a changed one, is refused."""
    try:
        path = find_soundfont()
    except MissingDependencyError:
        return None
    return {"path": str(path.resolve()), "sha256": _soundfont_digest(path)}


def fluidsynth_available() -> bool:
    """True when the `fluidsynth` program and a soundfont are installed."""
    try:
        find_soundfont()
    except MissingDependencyError:
        return False
    return shutil.which("fluidsynth") is not None


def read_wav(
    path: str | os.PathLike[str], *, max_seconds: float | None = None, limit_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as float32 mono in [-1, 1] (channels averaged) and its sample rate.

    :param max_seconds: read only the first this many seconds (the rest of the file is never read).
    :param limit_seconds: refuse, before reading any sample, audio longer than this (after `max_seconds`).
    """
    try:
        with wave.open(str(path), "rb") as handle:
            channels, width, rate = handle.getnchannels(), handle.getsampwidth(), handle.getframerate()
            frames = handle.getnframes()
            if max_seconds is not None:
                frames = min(frames, int(max_seconds * rate))
            if width == 2 and limit_seconds is not None and frames > limit_seconds * rate:
                raise BadInputError(
                    f"WAV file {path} holds {frames / rate:.1f} s; at most {limit_seconds:g} s are read "
                    "(pass --seconds to use its beginning)"
                )
            data = handle.readframes(frames) if width == 2 else b""
    except (OSError, wave.Error, EOFError) as exc:
        raise BadInputError(f"cannot read WAV file {path}: {exc}") from exc
    if width != 2:
        raise BadInputError(f"WAV file {path} has {8 * width}-bit samples; expected 16-bit PCM")
    audio = np.frombuffer(data, dtype="<i2")[: len(data) // (2 * channels) * channels].astype(np.float32) / 32768.0
    return audio.reshape(-1, channels).mean(axis=1), rate


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono float audio in [-1, 1] (clipped) as 16-bit PCM WAV; returns the path."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1 or not np.isfinite(audio).all():
        raise BadInputError(f"audio must be a finite 1-D array of samples, got shape {audio.shape}")
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.tobytes())
    return write_atomic(path, buffer.getvalue(), what="WAV file")


def _fluidsynth(midi: Path, wav: Path, sample_rate: int, gain: float, soundfont: Path) -> None:
    program = shutil.which("fluidsynth")
    if program is None:
        raise MissingDependencyError(f"the `fluidsynth` program is needed to render MIDI to audio; {_INSTALL}")
    command = [
        program,
        "-ni",
        "-q",
        "-g",
        str(gain),
        "-r",
        str(sample_rate),
        "-F",
        str(wav),
        "-T",
        "wav",
        str(soundfont),
        str(midi),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not wav.is_file():
        raise BadInputError(f"fluidsynth could not render {midi.name}: {(done.stderr or done.stdout).strip()[:200]}")


def render_midi(
    midi: str | os.PathLike[str] | bytes,
    *,
    sample_rate: int = SAMPLE_RATE,
    gain: float = 0.5,
    cache: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    trim_db: float | None = -60.0,
) -> np.ndarray:
    """Render a MIDI file (path or bytes) to float32 mono audio [samples] in [-1, 1].

    :param trim_db: drop leading/trailing audio quieter than this (dB re full scale); None keeps all.
    :raises MissingDependencyError: when fluidsynth or the soundfont is missing.
    """
    check_int("sample_rate", sample_rate, 8000, 96000)
    if shutil.which("fluidsynth") is None:
        raise MissingDependencyError(f"the `fluidsynth` program is needed to render MIDI to audio; {_INSTALL}")
    soundfont = find_soundfont()
    if isinstance(midi, (bytes, bytearray)):
        data = bytes(midi)
    else:
        try:
            data = Path(midi).read_bytes()
        except OSError as exc:
            raise BadInputError(f"cannot read MIDI file {midi}: {exc.strerror or exc}") from exc
    if not data.startswith(b"MThd"):
        raise BadInputError(
            f"{midi if not isinstance(midi, (bytes, bytearray)) else 'the MIDI bytes'} is not a "
            "Standard MIDI File (no MThd header)"
        )
    key = hashlib.sha256(
        b"|".join(
            [
                data,
                str(sample_rate).encode(),
                repr(gain).encode(),
                repr(trim_db).encode(),
                _soundfont_digest(soundfont).encode(),
            ]
        )
    ).hexdigest()
    path = check_entry(Path(cache or cache_dir()) / "audio" / f"render-{key[:24]}.npz") if use_cache else Path()
    if use_cache and path.is_file():
        try:
            return load_arrays(path, key, ["audio"])["audio"]
        except (CacheMismatch, OSError, ValueError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # corrupt or foreign: rebuild, never trust
    with tempfile.TemporaryDirectory() as folder:
        mid, wav = Path(folder) / "in.mid", Path(folder) / "out.wav"
        mid.write_bytes(data)
        _fluidsynth(mid, wav, sample_rate, gain, soundfont)
        audio, _ = read_wav(wav)
    if trim_db is not None and audio.size:
        loud = np.flatnonzero(np.abs(audio) > 10 ** (trim_db / 20))
        audio = audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if use_cache:
        save_arrays(path, key, {"audio": audio})
    return audio


def render_performance(performance, **kwargs) -> np.ndarray:
    """Render an `etude.music.Performance` (piano) to audio; keyword arguments as `render_midi`."""
    with tempfile.TemporaryDirectory() as folder:
        mid = Path(folder) / "piece.mid"
        performance.to_midi(mid)
        return render_midi(mid.read_bytes(), **kwargs)


def piano_dataset(
    pieces: int = 8,
    *,
    seed: int = 0,
    sample_rate: int = SAMPLE_RATE,
    valid_every: int = 4,
    max_seconds: float | None = None,
    peak: float | None = 0.9,
    cache: str | os.PathLike[str] | None = None,
    show_progress: bool | None = None,
) -> dict[str, list[np.ndarray]]:
    """Rendered Bach chorales split by piece: {'train': [audio...], 'valid': [audio...]}.

    Piece i (in corpus order) is held out when i % valid_every == valid_every - 1 (at least one piece
    each way), and scaled to the given `peak` (None: as rendered). Every piece is played in a style sampled from `seed` (see `etude.music.play`).
    """
    from etude.music import load_corpus
    from etude.runtime import progress

    check_int("pieces", pieces, 2)
    if not fluidsynth_available():
        raise MissingDependencyError(f"fluidsynth and a General MIDI soundfont are needed to render audio; {_INSTALL}")
    corpus = load_corpus("bach", limit=pieces, seed=seed, cache=cache, show_progress=show_progress)
    items = sorted(corpus.pieces, key=lambda p: p.name)
    out: dict[str, list[np.ndarray]] = {"train": [], "valid": []}
    for i, piece in enumerate(
        progress(items, desc="render", disable=None if show_progress is None else not show_progress)
    ):
        audio = render_performance(piece.performance, sample_rate=sample_rate, cache=cache)
        if max_seconds is not None:
            audio = audio[: int(max_seconds * sample_rate)]
        if peak and audio.size and np.abs(audio).max() > 0:
            audio = audio * (peak / np.abs(audio).max())  # the renders peak near 0.15: use the mu-law range
        held_out = i % valid_every == valid_every - 1 or (i == len(items) - 1 and not out["valid"])
        out["valid" if held_out else "train"].append(audio)
    return out


def recorded_piano_dataset(
    pieces: int = 8,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    sample_rate: int = SAMPLE_RATE,
    valid_every: int = 4,
    max_seconds: float | None = None,
    peak: float | None = 0.9,
) -> dict[str, list[np.ndarray]]:
    """`piano_dataset` from recordings: the first ``pieces`` WAV files (by path) of `etude.data`'s ``piano``
    folder, resampled to ``sample_rate`` and split by file the same way (every ``valid_every``-th held out,
    at least one each way); MissingDataError when there is no folder of WAVs."""
    from etude.data.catalog import get_spec
    from etude.data.piano import piano_files, read_wav

    check_int("pieces", pieces, 2)
    files = piano_files(get_spec("piano").locate(data_dir or None))[:pieces]
    if len(files) < 2:
        raise BadInputError(f"the piano folder holds {len(files)} WAV file; the study needs >= 2 (train and held out)")
    out: dict[str, list[np.ndarray]] = {"train": [], "valid": []}
    for i, path in enumerate(files):
        audio = read_wav(path, rate=sample_rate).astype(np.float64)
        if max_seconds is not None:
            audio = audio[: int(max_seconds * sample_rate)]
        if peak and audio.size and np.abs(audio).max() > 0:
            audio = audio * (peak / np.abs(audio).max())
        held_out = i % valid_every == valid_every - 1 or (i == len(files) - 1 and not out["valid"])
        out["valid" if held_out else "train"].append(audio)
    return out


def midi_preview(midi_path: str | os.PathLike[str]) -> tuple[str, bytes] | None:
    """`("audio/wav", bytes)` of a MIDI file rendered with fluidsynth, or None when it cannot be."""
    import io

    if not fluidsynth_available():
        return None
    try:
        audio = render_midi(midi_path)
    except (BadInputError, MissingDependencyError, OSError, subprocess.SubprocessError):
        return None
    buffer = io.BytesIO()
    pcm = (np.clip(audio, -1, 1) * 32767).round().astype("<i2")
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(pcm.tobytes())
    return "audio/wav", buffer.getvalue()
