"""Symbolic music for the Transformer autoencoder (Choi et al., ICML 2020, arXiv:1912.05537).

The data layer: performances, their event encoding, melodies, MIDI files, the music21 corpus
played in sampled styles, and the OA similarity metric::

    from etude.music import Performance, PerformanceEncoding, load_corpus, oa_similarity
    corpus = load_corpus("bach", limit=8)              # parsed once, cached in $ETUDE_CACHE
    piece = corpus.split("train")[0]
    ids = PerformanceEncoding().encode(piece.performance)   # 388 events + PAD/EOS/BOS
    oa_similarity(piece.performance, PerformanceEncoding().decode(ids))  # ~1.0

music21 loads only when the corpus is used, numba when a MIDI file is first read, symusic when one is written.

The models: ``RelativeAttention`` (skew trick), ``MusicTransformer``, ``TransformerAutoencoder``
(sum/concat/tile), ``generate_tokens`` (``etude.music.generate.generate``: KV cache;
the submodule's name shadows a package-level ``generate``) and ``fit``/``nll`` for training and evaluation.

A user's folder of MIDI files: ``tokenize_midi_dir`` (read once into memory-mapped token streams in
``$ETUDE_CACHE``) and ``StreamCrops`` (training crops sliced out of them on demand).
"""

from etude.music.corpus import (
    COLLECTIONS,
    CacheRebuiltWarning,
    Corpus,
    Piece,
    Score,
    load_corpus,
    load_scores,
    parse_score,
    play,
    source_files,
    split_of,
)
from etude.music.events import PerformanceEncoding, bin_to_velocity, velocity_to_bin
from etude.music.folder import FolderCrops, midi_dir_crops
from etude.music.likeness import music_figures
from etude.music.melody import MelodyEncoding, skyline
from etude.music.metrics import (
    FEATURES,
    empty_beat_rate,
    gaussian_overlap,
    oa_similarity,
    pitch_class_entropy,
    polyphony,
    sanity_metrics,
    window_features,
)
from etude.music.performance import Note, Performance, read_midi, write_midi
from etude.music.plots import plot_piano_roll
from etude.music.styles import Style, augment, render, sample_style
from etude.music.tokens import SkippedFilesWarning, TokenCache, midi_files, tokenize_midi_dir
from etude.runtime.cache import cache_dir

__all__ = [
    "COLLECTIONS",
    "CacheRebuiltWarning",
    "Corpus",
    "FEATURES",
    "FolderCrops",
    "MelodyEncoding",
    "Note",
    "Performance",
    "PerformanceEncoding",
    "Piece",
    "Score",
    "Style",
    "augment",
    "bin_to_velocity",
    "cache_dir",
    "empty_beat_rate",
    "gaussian_overlap",
    "load_corpus",
    "load_scores",
    "midi_dir_crops",
    "music_figures",
    "oa_similarity",
    "parse_score",
    "pitch_class_entropy",
    "play",
    "plot_piano_roll",
    "polyphony",
    "read_midi",
    "render",
    "sample_style",
    "sanity_metrics",
    "skyline",
    "source_files",
    "split_of",
    "velocity_to_bin",
    "window_features",
    "write_midi",
    # a user's MIDI folder as cached token streams, and crops streamed from them
    "SkippedFilesWarning",
    "StreamCrops",
    "TokenCache",
    "midi_files",
    "tokenize_midi_dir",
    # models (Choi et al. 2020; Huang et al. 2018)
    "COMBINES",
    "CONDITIONINGS",
    "Crops",
    "MusicTransformer",
    "PerformanceEncoder",
    "RelativeAttention",
    "TransformerAutoencoder",
    "TransformerConfig",
    "crop",
    "filter_logits",
    "fit",
    "generate_tokens",
    "interpolate_style",
    "load_model",
    "make_crops",
    "nll",
    "relative_logits_loop",
    "save_model",
    "sinusoids",
    "skew_bidirectional",
    "skew_causal",
]

# the models import torch (about 1-2 s), so they load on first use
_LAZY = {
    **dict.fromkeys(
        ["RelativeAttention", "relative_logits_loop", "sinusoids", "skew_bidirectional", "skew_causal"],
        "etude.music.attention",
    ),
    **dict.fromkeys(["MusicTransformer", "TransformerConfig"], "etude.music.transformer"),
    **dict.fromkeys(
        ["COMBINES", "CONDITIONINGS", "PerformanceEncoder", "TransformerAutoencoder"], "etude.music.autoencoder"
    ),
    **dict.fromkeys(["filter_logits", "interpolate_style"], "etude.music.generate"),
    "generate_tokens": "etude.music.generate",
    **dict.fromkeys(["Crops", "crop", "make_crops"], "etude.music.crops"),
    **dict.fromkeys(["fit", "load_model", "nll", "save_model"], "etude.music.training"),
    "StreamCrops": "etude.music.stream",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), "generate" if name == "generate_tokens" else name)
    raise AttributeError(f"module 'etude.music' has no attribute {name!r}")
