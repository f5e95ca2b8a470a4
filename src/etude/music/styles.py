"""Performance styles: how a score becomes a performance, sampled per piece and recorded.

The music21 scores have no dynamics or timing of their own (every exported velocity is the
same), so each piece is played in a sampled ``Style``: tempo, dynamics level, per-voice
balance, a crescendo across the piece, articulation and timing/velocity jitter. The style is
stored with the piece, so "style" in the Transformer autoencoder study (Choi et al., ICML
2020, arXiv:1912.05537) is a known quantity that its measurements can be checked against.

Rendering a note of voice ``k`` at score time ``q`` (quarters) with notated length ``d`` in a
piece of ``Q`` quarters:

- onset  ``t = 60 q / tempo + jitter * z``, ``z ~ N(0, 1)`` clipped to [-2, 2], one ``z`` per
  (score time, pitch) so that voices doubling a key strike it together; ``t`` clipped at 0;
- offset ``t + articulation * 60 d / tempo`` (at least 20 ms);
- velocity ``level + balance[k] + crescendo (q / Q - 1/2) + N(0, velocity_jitter)``, rounded
  and clipped to 1..127.

Augmentation (Sec. 4 of the paper): transposition by -3..+3 semitones and time-stretch by
0.95-1.05, the same for a performance and its melody.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from etude.errors import BadInputError
from etude.music.performance import Performance
from etude.validation import check_int

__all__ = ["Style", "augment", "render", "sample_style"]

MIN_NOTE_SECONDS = 0.02


@dataclass(frozen=True)
class Style:
    """One piece's performance style (all fields recorded with the piece)."""

    tempo: float
    """Quarter notes per minute."""
    level: float
    """Mean MIDI velocity of the piece (its dynamics level)."""
    balance: tuple[float, ...]
    """Velocity offset per voice (score part), the melody voice's included."""
    crescendo: float
    """Velocity change from the first to the last beat (negative: diminuendo)."""
    articulation: float
    """Sounding fraction of each notated duration (0.5 detached ... 1.0 legato)."""
    jitter: float
    """Standard deviation of onset timing noise, in seconds."""
    velocity_jitter: float
    """Standard deviation of per-note velocity noise."""

    def as_dict(self) -> dict[str, float | list[float]]:
        """The style as plain JSON-ready numbers."""
        values = asdict(self)
        values["balance"] = list(self.balance)
        return values


def sample_style(rng: np.random.Generator, voices: int, melody_voice: int = 0) -> Style:
    """Draw a style: tempo log-uniform in 54-112 qpm, level 45-100, melody voice +0..+20 and
    other voices N(0, 5) velocity offsets, crescendo -25..+25, articulation 0.55-1.0, onset
    jitter 0-25 ms, velocity jitter 0-6.

    :param rng: a NumPy generator (``np.random.default_rng(seed)``).
    :param voices: number of score parts (>= 1).
    :param melody_voice: the part that carries the melody, in ``0..voices-1``.
    """
    check_int("voices", voices, 1)
    if not 0 <= melody_voice < voices:
        raise BadInputError(f"melody_voice must be in 0..{voices - 1}, got {melody_voice!r}")
    tempo = float(np.exp(rng.uniform(np.log(54.0), np.log(112.0))))
    level = float(rng.uniform(45.0, 100.0))
    balance = rng.normal(0.0, 5.0, size=voices)
    balance[melody_voice] = rng.uniform(0.0, 20.0)
    return Style(
        tempo=tempo,
        level=level,
        balance=tuple(float(b) for b in balance),
        crescendo=float(rng.uniform(-25.0, 25.0)),
        articulation=float(rng.uniform(0.55, 1.0)),
        jitter=float(rng.uniform(0.0, 0.025)),
        velocity_jitter=float(rng.uniform(0.0, 6.0)),
    )


def render(
    voice: np.ndarray,
    pitch: np.ndarray,
    onset: np.ndarray,
    duration: np.ndarray,
    length: float,
    style: Style,
    rng: np.random.Generator,
) -> tuple[Performance, np.ndarray]:
    """Play a score in ``style`` (equations in the module docstring).

    :param voice: part index per note, shape ``[notes]``.
    :param pitch: MIDI pitch per note, shape ``[notes]``.
    :param onset: score time per note in quarters, shape ``[notes]``.
    :param duration: notated length per note in quarters (> 0), shape ``[notes]``.
    :param length: the score's length ``Q`` in quarters (> 0).
    :param style: the style to play in; ``len(style.balance)`` must exceed every voice index.
    :param rng: generator for the jitter.
    :returns: the performance and, per score note, its played ``(start, end, velocity)``,
        shape ``[notes, 3]`` (before same-key notes merge), to pick single voices from.
    """
    voice = np.asarray(voice, dtype=np.int64)
    if voice.size and voice.max() >= len(style.balance):
        raise BadInputError(f"style has a balance for {len(style.balance)} voices, the score has voice {voice.max()}")
    if not length > 0:
        raise BadInputError(f"score length must be > 0 quarters, got {length!r}")
    seconds_per_quarter = 60.0 / style.tempo
    n = voice.size
    # one timing error per struck key: voices doubling a pitch at one score time strike it together
    _, strike = np.unique(np.stack([onset, pitch], axis=1), axis=0, return_inverse=True)
    error = np.clip(rng.normal(0.0, 1.0, n), -2.0, 2.0)[strike.reshape(-1)] * style.jitter
    start = np.maximum(onset * seconds_per_quarter + error, 0.0)
    end = start + np.maximum(style.articulation * duration * seconds_per_quarter, MIN_NOTE_SECONDS)
    velocity = (
        style.level
        + np.asarray(style.balance)[voice]
        + style.crescendo * (onset / length - 0.5)
        + rng.normal(0.0, style.velocity_jitter, n)
    )
    velocity = np.clip(np.round(velocity), 1, 127).astype(np.int64)
    performance = Performance.from_arrays(pitch, velocity, start, end)
    return performance, np.stack([start, end, velocity], axis=1)


def augment(
    *performances: Performance,
    rng: np.random.Generator,
    transpose: tuple[int, int] = (-3, 3),
    stretch: tuple[float, float] = (0.95, 1.05),
    pitch_range: tuple[int, int] = (0, 127),
) -> list[Performance]:
    """Transpose and time-stretch performances by one random shift and factor.

    The shift is uniform over the integers in ``transpose`` that keep every note of every
    performance inside ``pitch_range`` (0 is always allowed when the input fits); the factor is
    uniform in ``stretch``. Pass a performance and its melody together to keep them aligned.

    :returns: the augmented performances, in the order given.
    """
    if not performances or not all(isinstance(p, Performance) for p in performances):
        raise BadInputError("augment expects one or more Performance objects")
    low, high = transpose
    if not (isinstance(low, int) and isinstance(high, int) and low <= high):
        raise BadInputError(f"transpose must be (low, high) ints with low <= high, got {transpose!r}")
    if not 0 < stretch[0] <= stretch[1]:
        raise BadInputError(f"stretch must be (low, high) with 0 < low <= high, got {stretch!r}")
    pitches = np.concatenate([p.pitch for p in performances])
    if pitches.size:
        low = max(low, pitch_range[0] - int(pitches.min()))
        high = min(high, pitch_range[1] - int(pitches.max()))
        if low > high:
            raise BadInputError(
                f"no shift in {transpose} keeps pitches {int(pitches.min())}..{int(pitches.max())} "
                f"inside pitch_range {pitch_range}"
            )
    shift = int(rng.integers(low, high + 1))
    factor = float(rng.uniform(*stretch))
    return [p.transpose(shift).stretch(factor) for p in performances]
