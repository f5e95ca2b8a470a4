"""The music21 corpus as performances: parsed once into a cache, split by piece, played in styles.

Data for the Transformer autoencoder (Choi et al., ICML 2020, arXiv:1912.05537) without a
download: the scores that ship inside the music21 package (408 Bach chorales first; other
collections in ``COLLECTIONS``). Each score becomes arrays of (part, pitch, onset, duration)
in quarter notes: ties are merged, chords give one note per pitch, grace notes and rests are
dropped, repeats are played as written. The melody voice is the part named "Soprano" or else
the part with the highest mean pitch.

Parsing all Bach takes minutes (270 s on a busy 2-core machine), so the arrays are cached in
``$ETUDE_CACHE`` (default ``~/.cache/etude``) as ``music21-<collection>-<pieces>-<hash>.npz``,
the hash covering the cache format, the music21 version and every source file's name and bytes
(``etude.runtime.cache``). A cache file that cannot be read, fails its checksum or was built for
other sources is rebuilt with a ``CacheRebuiltWarning``, never trusted.

Performances are rendered from the cache on every load (milliseconds per piece): piece ``name``
under ``seed`` is played in the style drawn from ``default_rng([seed, crc32(name)])``, so a piece
sounds the same in any subset. The split is a hash of the piece name (80/10/10 by default),
also independent of the subset.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from etude.errors import BadInputError, EtudeWarning
from etude.music.performance import Performance
from etude.music.styles import Style, render, sample_style
from etude.runtime.cache import CacheMismatch, cache_dir, check_entry, load_arrays, save_arrays
from etude.runtime.optional import require
from etude.validation import check_int

__all__ = [
    "COLLECTIONS",
    "CacheRebuiltWarning",
    "Corpus",
    "Piece",
    "Score",
    "load_corpus",
    "load_scores",
    "parse_score",
    "play",
    "source_files",
    "split_of",
]

CACHE_VERSION = 1
COLLECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bach": (("bach",), (".mxl",)),  # the 408 chorales
    "monteverdi": (("monteverdi",), (".mxl",)),  # 49 madrigals
    "palestrina": (("palestrina",), (".krn",)),  # 1,318 mass movements (slow to parse)
    "quartets": (("haydn", "mozart", "beethoven"), (".mxl",)),  # string quartet movements
}
"""Collection name -> (music21 composer directories, file suffixes)."""
SPLITS = ("train", "validation", "test")
_ARRAYS = ("names", "lengths", "melody_voice", "voices", "offsets", "voice", "pitch", "onset", "duration")


class CacheRebuiltWarning(EtudeWarning):
    """A corpus cache file was unreadable or did not match, and was rebuilt from the sources."""


@dataclass(frozen=True)
class Score:
    """One parsed score: per note its part, MIDI pitch, onset and duration in quarters."""

    name: str
    length: float
    """Length of the score in quarters."""
    voices: int
    melody_voice: int
    voice: np.ndarray
    pitch: np.ndarray
    onset: np.ndarray
    duration: np.ndarray


@dataclass(frozen=True)
class Piece:
    """One piece of a corpus: its split, its recorded style, its performance and melody."""

    name: str
    split: str
    style: Style
    performance: Performance
    melody: Performance
    """The melody voice as played in the performance (before same-key notes merge)."""


def source_files(collection: str = "bach", limit: int | None = None) -> list[Path]:
    """The collection's score files in name order, the first ``limit`` of them when given."""
    if collection not in COLLECTIONS:
        raise BadInputError(f"collection must be one of {sorted(COLLECTIONS)}, got {collection!r}")
    if limit is not None:
        check_int("limit", limit, 1)
    corpus = require("music21.corpus", "music")

    composers, suffixes = COLLECTIONS[collection]
    files = sorted({Path(p) for c in composers for p in corpus.getComposer(c) if Path(p).suffix in suffixes}, key=_name)
    return files[:limit] if limit is not None else files


def _name(file: Path) -> str:
    """A piece's name: its path inside music21's corpus without the suffix ('bach/bwv1.6')."""
    common = require("music21.common", "music")

    try:
        return file.relative_to(common.getCorpusFilePath()).with_suffix("").as_posix()
    except ValueError:  # a file outside the corpus
        return file.stem


def parse_score(path: str | os.PathLike[str]) -> Score:
    """Parse one score file with music21 into a ``Score`` (rules in the module docstring)."""
    chord, converter = require("music21.chord", "music"), require("music21.converter", "music")

    file = Path(path)
    try:
        score = converter.parse(file, forceSource=True, storePickle=False)
    except Exception as error:  # music21 raises many types for files it cannot read
        raise BadInputError(f"music21 cannot parse {file} ({type(error).__name__}: {error})") from error
    parts = list(score.parts) or [score]
    rows: list[tuple[int, int, float, float]] = []
    names = []
    for k, part in enumerate(parts):
        names.append((part.partName or "").lower())
        for element in part.stripTies().flatten().notes:
            length = float(element.quarterLength)
            if length <= 0 or element.duration.isGrace:
                continue
            pitches = element.pitches if isinstance(element, chord.Chord) else (element.pitch,)
            rows.extend((k, int(p.midi), float(element.offset), length) for p in pitches)
    if not rows:
        raise BadInputError(f"score {file} has no notes")
    voice, pitch, onset, duration = (np.asarray(c) for c in zip(*rows))
    named = [k for k, name in enumerate(names) if "soprano" in name]
    means = [pitch[voice == k].mean() if (voice == k).any() else -1.0 for k in range(len(parts))]
    melody = named[0] if named else int(np.argmax(means))
    length = max(float(score.highestTime), float((onset + duration).max()))
    return Score(
        _name(file),
        length,
        len(parts),
        melody,
        voice.astype(np.int64),
        pitch.astype(np.int64),
        onset.astype(np.float64),
        duration.astype(np.float64),
    )


def _content_hash(collection: str, files: list[Path]) -> str:
    music21 = require("music21", "music")

    digest = hashlib.sha256(f"etude-music21-v{CACHE_VERSION}|{music21.__version__}|{collection}".encode())
    for file in files:
        digest.update(f"|{_name(file)}{file.suffix}|".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _pack(scores: list[Score]) -> dict[str, np.ndarray]:
    counts = [s.pitch.size for s in scores]
    return {
        "names": np.array([s.name for s in scores]),
        "lengths": np.array([s.length for s in scores]),
        "melody_voice": np.array([s.melody_voice for s in scores], dtype=np.int64),
        "voices": np.array([s.voices for s in scores], dtype=np.int64),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        **{k: np.concatenate([getattr(s, k) for s in scores]) for k in ("voice", "pitch", "onset", "duration")},
    }


def _unpack(arrays: dict[str, np.ndarray]) -> list[Score]:
    n, offsets = arrays["names"].size, arrays["offsets"]
    sizes = {arrays[k].size for k in ("voice", "pitch", "onset", "duration")}
    if offsets.size != n + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 1) or sizes != {int(offsets[-1])}:
        raise CacheMismatch("inconsistent array sizes")
    return [
        Score(
            str(arrays["names"][i]),
            float(arrays["lengths"][i]),
            int(arrays["voices"][i]),
            int(arrays["melody_voice"][i]),
            *(arrays[k][offsets[i] : offsets[i + 1]] for k in ("voice", "pitch", "onset", "duration")),
        )
        for i in range(n)
    ]


def load_scores(
    collection: str = "bach",
    *,
    limit: int | None = None,
    cache: str | os.PathLike[str] | None = None,
    show_progress: bool | None = None,
) -> tuple[list[Score], Path]:
    """The collection's parsed scores, from the cache or parsed (then cached).

    :param collection: a key of ``COLLECTIONS``.
    :param limit: parse only the first ``limit`` files (a small subset for tests and demos).
    :param cache: cache folder (default ``cache_dir()``).
    :param show_progress: progress bar while parsing (``None``: only on a terminal).
    :returns: the scores and the cache file.
    """
    from etude.runtime import progress

    files = source_files(collection, limit)
    key = _content_hash(collection, files)
    path = Path(cache) if cache is not None else cache_dir()
    path = check_entry(path / f"music21-{collection}-{len(files)}-{key[:16]}.npz")
    if path.exists():
        try:
            return _unpack(load_arrays(path, key, _ARRAYS)), path
        except Exception as error:  # any unreadable, truncated or mismatched file is rebuilt
            warnings.warn(
                f"corpus cache {path} is unusable ({type(error).__name__}: {error}); rebuilding it",
                CacheRebuiltWarning,
                stacklevel=2,
            )
    disable = None if show_progress is None else not show_progress
    scores = []
    for file in progress(files, desc=f"parsing {collection}", disable=disable):
        try:
            scores.append(parse_score(file))
        except BadInputError as error:  # an unreadable or empty score is left out, loudly
            warnings.warn(f"{error}; leaving it out", EtudeWarning, stacklevel=2)
    if not scores:
        raise BadInputError(f"no score of collection {collection!r} could be parsed")
    save_arrays(path, key, _pack(scores))
    return scores, path


def split_of(name: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """'train', 'validation' or 'test' for a piece, from a hash of its name (stable across subsets)."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise BadInputError(f"split fractions must be 3 non-negative numbers summing to 1, got {fractions!r}")
    u = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2.0**64
    return SPLITS[int(np.searchsorted(np.cumsum(fractions)[:2], u, side="right"))]


def play(score: Score, seed: int = 0, split: str = "train") -> Piece:
    """Play one score in its sampled style (``default_rng([seed, crc32(name)])``)."""
    rng = np.random.default_rng([seed, zlib.crc32(score.name.encode())])
    style = sample_style(rng, score.voices, score.melody_voice)
    performance, played = render(score.voice, score.pitch, score.onset, score.duration, score.length, style, rng)
    mine = played[score.voice == score.melody_voice]
    melody = Performance.from_arrays(
        score.pitch[score.voice == score.melody_voice], mine[:, 2].astype(np.int64), mine[:, 0], mine[:, 1]
    )
    return Piece(score.name, split, style, performance, melody)


class Corpus:
    """Pieces of one collection played in sampled styles; ``split`` and ``stats`` summarize them."""

    def __init__(self, collection: str, seed: int, pieces: list[Piece], cache_file: Path) -> None:
        self.collection, self.seed, self.pieces, self.cache_file = collection, seed, pieces, cache_file

    def __len__(self) -> int:
        return len(self.pieces)

    def __repr__(self) -> str:
        return f"Corpus({self.collection!r}, {len(self)} pieces, seed={self.seed})"

    def split(self, name: str) -> list[Piece]:
        """The pieces of one split: 'train', 'validation' or 'test'."""
        if name not in SPLITS:
            raise BadInputError(f"split must be one of {SPLITS}, got {name!r}")
        return [p for p in self.pieces if p.split == name]

    def stats(self, encoding=None) -> dict[str, object]:
        """Pieces per split, notes, hours, and tokens (total, median, min, max per piece)."""
        from etude.music.events import PerformanceEncoding

        encoding = encoding or PerformanceEncoding()
        ids = [encoding.encode(p.performance) for p in self.pieces]
        tokens = np.array([i.size for i in ids])
        every = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        bounds = [
            encoding.note_on_offset,
            encoding.note_off_offset,
            encoding.shift_offset,
            encoding.velocity_offset,
            encoding.BOS,
        ]
        kinds = np.histogram(every, bins=bounds)[0] / max(every.size, 1)
        return {
            "collection": self.collection,
            "seed": self.seed,
            "pieces": len(self),
            **{split: len(self.split(split)) for split in SPLITS},
            "notes": int(sum(len(p.performance) for p in self.pieces)),
            "hours": round(sum(p.performance.duration for p in self.pieces) / 3600, 3),
            "tokens": int(tokens.sum()),
            "median_tokens": float(np.median(tokens)) if tokens.size else 0.0,
            "min_tokens": int(tokens.min()) if tokens.size else 0,
            "max_tokens": int(tokens.max()) if tokens.size else 0,
            "token_shares": {
                k: round(float(f), 3) for k, f in zip(("note_on", "note_off", "shift", "velocity"), kinds)
            },
            "encoding": repr(encoding),
            "cache": str(self.cache_file),
        }


def load_corpus(
    collection: str = "bach",
    *,
    limit: int | None = None,
    seed: int = 0,
    cache: str | os.PathLike[str] | None = None,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    show_progress: bool | None = None,
) -> Corpus:
    """A collection of the music21 corpus as performances with recorded styles.

    :param collection: a key of ``COLLECTIONS`` (default 'bach').
    :param limit: only the first ``limit`` score files (tests use a handful).
    :param seed: selects every piece's style and jitter.
    :param cache: cache folder (default ``$ETUDE_CACHE`` or ``~/.cache/etude``).
    :param fractions: train/validation/test fractions of pieces.
    """
    check_int("seed", seed, 0)
    scores, path = load_scores(collection, limit=limit, cache=cache, show_progress=show_progress)
    return Corpus(collection, seed, [play(s, seed, split_of(s.name, fractions)) for s in scores], path)
