"""A piano-roll plot of a performance: time on x, pitch on y, velocity as colour."""

from __future__ import annotations

import os

from etude.errors import BadInputError
from etude.music.performance import Performance

__all__ = ["plot_piano_roll"]


def plot_piano_roll(
    performance: Performance,
    path: str | os.PathLike[str] | None = None,
    *,
    title: str = "",
    melody: Performance | None = None,
    ax=None,
):
    """Draw ``performance`` as horizontal bars (one per note), shaded by velocity.

    :param performance: the notes to draw.
    :param path: write a PNG there (parent folders are created) and close the figure.
    :param title: the axes title.
    :param melody: optional notes outlined in red on top (e.g. the extracted melody).
    :param ax: a Matplotlib axes to draw into; a new figure when ``None``.
    :returns: the Matplotlib figure.
    """
    import matplotlib

    if path is not None and ax is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    if not isinstance(performance, Performance):
        raise BadInputError(f"performance must be a Performance, got {type(performance).__name__}")
    if melody is not None and not isinstance(melody, Performance):
        raise BadInputError(f"melody must be a Performance or None, got {type(melody).__name__}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(10, 4))

    def bars(perf: Performance):
        return [
            [(s, p - 0.4), (e, p - 0.4), (e, p + 0.4), (s, p + 0.4)]
            for p, s, e in zip(perf.pitch.tolist(), perf.start.tolist(), perf.end.tolist())
        ]

    notes = PolyCollection(
        bars(performance), array=performance.velocity.astype(float), cmap="viridis", clim=(1, 127), edgecolors="none"
    )
    ax.add_collection(notes)
    fig.colorbar(notes, ax=ax, label="velocity")
    if melody is not None and len(melody):
        ax.add_collection(PolyCollection(bars(melody), facecolors="none", edgecolors="red", linewidths=0.8))
    pitches = performance.pitch.tolist() + (melody.pitch.tolist() if melody is not None else [])
    ax.set_xlim(0, max(performance.duration, melody.duration if melody is not None else 0.0, 1.0))
    ax.set_ylim((min(pitches) - 2, max(pitches) + 2) if pitches else (58, 72))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title or f"{len(performance)} notes")
    if path is not None:
        from etude.runtime.figures import save_figure

        save_figure(fig, path, dpi=120, tight=False, bbox_inches="tight")
    return fig
