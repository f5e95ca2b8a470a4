"""Generation experiments of the transformer_ae study (Choi et al., ICML 2020, arXiv:1912.05537, Secs. 5.2-5.3).

Each function samples trained models on held-out chorales and returns plain numbers, the
generated performances and their decoder ids (for ``etude.music.likeness``), and the artifacts
it wrote; ``etude.music.experiments`` decides claims on them:

- ``oa_experiment``: OA(generated | X, X) of conditioned and unconditioned models (Sec. 5.2);
- ``style_direction``: one held-out score played loud/fast and soft/slow, both cropped to the
  same span in seconds (shrunk until both encodings fit the token budget), as conditioning;
- ``style_transfer``: "melody of A in the style of B" with a melody + performance model (Sec. 5.3);
- ``interpolation``: generations from ``(1 - alpha) s_A + alpha s_B`` of two pooled style vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from etude.music.autoencoder import TransformerAutoencoder
from etude.music.events import PerformanceEncoding
from etude.music.generate import generate, interpolate_style
from etude.music.melody import MelodyEncoding
from etude.music.metrics import mean_velocity, note_density, oa_similarity
from etude.music.performance import Performance
from etude.music.plots import plot_piano_roll
from etude.music.styles import Style, render
from etude.music.training import Crops, crop
from etude.runtime.figures import pyplot, save_figure

__all__ = [
    "STYLES",
    "equal_span",
    "interpolation",
    "oa_experiment",
    "plot_first",
    "style_direction",
    "style_transfer",
    "training_pitch_range",
]

STYLES = {"loud_fast": (110.0, 95.0), "soft_slow": (56.0, 50.0)}
"""The two contrasting styles of the style-direction claim: label -> (tempo in qpm, velocity level)."""


def _sampling(preset: Any) -> dict[str, Any]:
    return {
        "max_length": preset.max_tokens,
        "temperature": preset.temperature,
        "top_p": preset.top_p,
        "show_progress": False,
    }


def _ids(performance: Performance, limit: int, device: str | torch.device) -> Tensor:
    return torch.from_numpy(PerformanceEncoding().encode(performance)[:limit])[None].to(device)


def _melody_ids(melody: Performance, limit: int, device: str | torch.device) -> Tensor:
    menc = MelodyEncoding()
    ids = menc.encode(melody) if len(melody) else np.array([menc.NO_EVENT])
    return torch.from_numpy(ids[:limit])[None].to(device)


def _oa(a: Performance, b: Performance, window: dict[str, float]) -> float:
    value = oa_similarity(a, b, window=window["window"], hop=window["hop"])
    assert isinstance(value, float)  # per_feature=False gives the mean OA
    return value


def _decode(ids: Tensor) -> Performance:
    return PerformanceEncoding().decode(ids[0, 1:].cpu())


def training_pitch_range(data: Crops) -> tuple[int, int]:
    """Lowest and highest NOTE_ON pitch in the (augmented) training crops' ids."""
    enc = PerformanceEncoding()
    ids = data.performance.cpu().numpy()
    on = ids[(ids >= enc.note_on_offset) & (ids < enc.note_off_offset)] - enc.note_on_offset + enc.min_pitch
    if not on.size:
        return enc.min_pitch, enc.max_pitch
    return int(on.min()), int(on.max())


def _render(score: Any, style: Style, rng: np.random.Generator) -> Performance:
    return render(score.voice, score.pitch, score.onset, score.duration, score.length, style, rng)[0]


def _played(score: Any, label: str, seed: int, i: int) -> Performance:
    tempo, level = STYLES[label]
    return _render(
        score, Style(tempo, level, (0.0,) * score.voices, 0.0, 0.85, 0.01, 2.0), np.random.default_rng([seed, i])
    )


def _start(rng: np.random.Generator, performance: Performance, seconds: float) -> float:
    """A uniform start for a ``seconds`` crop of ``performance`` (0 when it is shorter)."""
    return float(rng.uniform(0.0, max(performance.duration - seconds, 0.0)))


def equal_span(
    performances: dict[str, Performance], seconds: float, budget: int
) -> tuple[dict[str, Performance], float]:
    """Crop every performance to the same ``[0, span)``, ``span = seconds * 0.8^k`` with the least ``k``
    for which every crop encodes to at most ``budget`` ids (the conditioning spans are equally long in seconds).
    """
    enc = PerformanceEncoding()
    span = seconds
    while True:
        crops = {k: crop(p, 0.0, span) for k, p in performances.items()}
        if all(len(enc.encode(c)) <= budget for c in crops.values()) or span < 0.1:
            return crops, span
        span *= 0.8


def oa_experiment(
    models: dict[str, TransformerAutoencoder],
    held: list,
    preset: Any,
    seed: int,
    out_dir: Path,
    device: str | torch.device,
) -> dict[str, Any]:
    """Generate from 'performance' (conditioned on a held-out crop X) and 'unconditional'; OA of each with X.

    :returns: ``oa`` (per crop, per model, plus the ceiling: X re-played in its style with fresh noise),
        ``generated`` (the performances per model), ``ids`` (their decoder ids), ``artifacts``, ``window``.
    """
    rng = np.random.default_rng(seed + 7)
    window = {"window": min(1.0, preset.seconds / 2), "hop": min(0.5, preset.seconds / 4)}
    samples = out_dir / "samples"
    oa: dict[str, list[float]] = {"performance": [], "unconditional": [], "ceiling": []}
    generated: dict[str, list[Performance]] = {"performance": [], "unconditional": []}
    tokens: dict[str, list[np.ndarray]] = {"performance": [], "unconditional": []}
    artifacts: list[str] = []
    for i in range(preset.samples):
        score, piece = held[i % len(held)]
        start = _start(rng, piece.performance, preset.seconds)
        x = crop(piece.performance, start, preset.seconds)
        again = _render(score, piece.style, np.random.default_rng([seed, 99, i]))
        ids = _ids(x, preset.max_tokens - 1, device)
        for name in ("performance", "unconditional"):
            out = generate(
                models[name],
                1,
                performance=ids if name == "performance" else None,
                seed=seed * 100 + i,
                **_sampling(preset),
            )
            perf = _decode(out)
            oa[name].append(_oa(perf, x, window) if len(perf) else 0.0)
            generated[name].append(perf)
            tokens[name].append(out[0, 1:].cpu().numpy())
            perf.to_midi(samples / f"{name}_{i}.mid")
            artifacts.append(f"samples/{name}_{i}.mid")
        oa["ceiling"].append(_oa(crop(again, start, preset.seconds), x, window))
        x.to_midi(samples / f"conditioning_{i}.mid")
        artifacts.append(f"samples/conditioning_{i}.mid")
    return {"oa": oa, "generated": generated, "ids": tokens, "artifacts": artifacts, "window": window}


def style_direction(
    model: TransformerAutoencoder,
    held: list,
    preset: Any,
    seed: int,
    out_dir: Path,
    device: str | torch.device,
    scores: int = 4,
) -> dict[str, Any]:
    """Per held-out score (the first ``scores``, cycling when fewer are held out): generations
    conditioned on it played loud/fast and soft/slow over equal spans.

    :returns: ``velocity`` and ``density`` (notes/s) per style label, one value per pair (NaN for
        an empty generation), ``span_seconds`` per pair, ``generated`` performances and their
        ``ids``, ``artifacts``.
    """
    budget = preset.max_tokens - 1
    out: dict[str, Any] = {
        "velocity": {k: [] for k in STYLES},
        "density": {k: [] for k in STYLES},
        "span_seconds": [],
        "generated": [],
        "ids": [],
        "artifacts": [],
    }
    for i in range(scores):
        score, _ = held[i % len(held)]
        spans, span = equal_span({label: _played(score, label, seed, i) for label in STYLES}, preset.seconds, budget)
        out["span_seconds"].append(span)
        for label, x in spans.items():
            tokens = generate(model, 1, performance=_ids(x, budget, device), seed=seed * 100 + i, **_sampling(preset))
            gen = _decode(tokens)
            out["ids"].append(tokens[0, 1:].cpu().numpy())
            out["velocity"][label].append(mean_velocity(gen))
            out["density"][label].append(note_density(gen))
            out["generated"].append(gen)
            if i == 0:
                gen.to_midi(out_dir / "samples" / f"style_{label}.mid")
                x.to_midi(out_dir / "samples" / f"style_{label}_conditioning.mid")
                out["artifacts"] += [f"samples/style_{label}.mid", f"samples/style_{label}_conditioning.mid"]
    return out


def style_transfer(
    model: TransformerAutoencoder,
    held: list,
    preset: Any,
    seed: int,
    out_dir: Path,
    device: str | torch.device,
    pairs: int = 3,
    write: int = 3,
) -> dict[str, Any]:
    """ "Melody of A in the style of B" for held-out pieces A = held[2k], B = held[2k + 1], k < ``pairs``.

    Writes per pair ``transfer_k_style.mid`` (B's performance crop, the conditioning),
    ``transfer_k_melody.mid`` (A's melody crop) and ``transfer_k_generated.mid``.
    Writes the MIDI files of the first ``write`` pairs only.
    :returns: ``pairs`` (names and the mean velocity / notes per second of A, B and the generation),
        ``generated`` performances and their ``ids``, ``artifacts``.
    """
    rng = np.random.default_rng(seed + 11)
    rows, artifacts, generated, tokens = [], [], [], []
    folder = out_dir / "transfer"
    for k in range(min(pairs, len(held) // 2)):
        (score_a, a), (score_b, b) = held[2 * k], held[2 * k + 1]
        start_a = _start(rng, a.performance, preset.seconds)
        start_b = _start(rng, b.performance, preset.seconds)
        melody = crop(a.melody, start_a, preset.seconds)
        style = crop(b.performance, start_b, preset.seconds)
        out = generate(
            model,
            1,
            performance=_ids(style, preset.max_tokens - 1, device),
            melody=_melody_ids(melody, preset.max_tokens, device),
            seed=seed * 100 + k,
            **_sampling(preset),
        )
        gen = _decode(out)
        generated.append(gen)
        tokens.append(out[0, 1:].cpu().numpy())
        for name, perf in (("style", style), ("melody", melody), ("generated", gen)):
            if k < write:
                perf.to_midi(folder / f"transfer_{k}_{name}.mid")
                artifacts.append(f"transfer/transfer_{k}_{name}.mid")
        own = crop(a.performance, start_a, preset.seconds)
        rows.append(
            {
                "melody_of": score_a.name,
                "style_of": score_b.name,
                "velocity": {"A": mean_velocity(own), "B": mean_velocity(style), "generated": mean_velocity(gen)},
                "notes_per_second": {"A": note_density(own), "B": note_density(style), "generated": note_density(gen)},
            }
        )
    return {"pairs": rows, "generated": generated, "ids": tokens, "artifacts": artifacts}


def interpolation(
    model: TransformerAutoencoder,
    held: list,
    preset: Any,
    seed: int,
    out_dir: Path,
    device: str | torch.device,
    alphas: tuple[float, ...] = (0.0, 0.5, 1.0),
    pairs: int = 4,
) -> dict[str, Any]:
    """Generate from ``s = (1 - alpha) s_A + alpha s_B`` (A: a held-out score played loud/fast, B: the same
    score soft/slow, equal spans) with the melody of another held-out piece; one sampling seed per pair
    for every alpha. Needs a model with a melody encoder when ``model.uses_melody``.

    :returns: ``alpha``, per-alpha means over pairs of ``velocity`` and ``notes_per_second``, the
        per-pair values, ``artifacts`` (pair 0's generations and a plot of the features against alpha).
    """
    budget = preset.max_tokens - 1
    rng = np.random.default_rng(seed + 13)
    per_pair: dict[str, list[list[float]]] = {"velocity": [], "notes_per_second": []}
    artifacts: list[str] = []
    for k in range(pairs):
        score, _ = held[k % len(held)]
        _, piece = held[(k + 1) % len(held)]
        spans, _ = equal_span({label: _played(score, label, seed, 50 + k) for label in STYLES}, preset.seconds, budget)
        a, b = (_ids(spans[label], budget, device) for label in STYLES)
        start = _start(rng, piece.performance, preset.seconds)
        melody = (
            _melody_ids(crop(piece.melody, start, preset.seconds), preset.max_tokens, device)
            if model.uses_melody
            else None
        )
        velocity, density = [], []
        for alpha in alphas:
            gen = _decode(
                generate(
                    model,
                    1,
                    style=interpolate_style(model, a, b, alpha),
                    melody=melody,
                    seed=seed * 100 + 60 + k,
                    **_sampling(preset),
                )
            )
            velocity.append(mean_velocity(gen))
            density.append(note_density(gen))
            if k == 0:
                gen.to_midi(out_dir / "interpolation" / f"alpha_{alpha:g}.mid")
                artifacts.append(f"interpolation/alpha_{alpha:g}.mid")
        per_pair["velocity"].append(velocity)
        per_pair["notes_per_second"].append(density)
    means = {f: [float(np.nanmean(col)) for col in zip(*rows)] for f, rows in per_pair.items()}
    _plot_features(alphas, per_pair, means, out_dir / "interpolation" / "features.png")
    artifacts.append("interpolation/features.png")
    return {"alpha": list(alphas), **means, "per_pair": per_pair, "artifacts": artifacts}


def _plot_features(alphas: tuple[float, ...], per_pair: dict, means: dict, path: Path) -> None:
    """Velocity and notes/s against alpha: each pair in grey, the mean over pairs in colour."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8))
    labels = {"velocity": "mean velocity", "notes_per_second": "notes per second"}
    for ax, (feature, rows) in zip(axes, per_pair.items()):
        for row in rows:
            ax.plot(alphas, row, color="0.75", lw=0.8)
        ax.plot(alphas, means[feature], "o-", color="C0", lw=2)
        ax.set(xlabel="alpha (0: loud/fast, 1: soft/slow)", ylabel=labels[feature])
    save_figure(fig, path, dpi=100)


def plot_first(performances: dict[str, Performance], out_dir: Path, title: str) -> list[str]:
    """Piano rolls ``samples/<name>_0.png`` of the first sample per model."""
    names = []
    for name, perf in performances.items():
        plot_piano_roll(perf, out_dir / "samples" / f"{name}_0.png", title=f"{name} ({title})")
        names.append(f"samples/{name}_0.png")
    return names
