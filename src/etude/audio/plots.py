"""Spectrogram and training-curve plots of the audio study (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from etude.audio.metrics import spectral_flatness
from etude.runtime import pyplot, save_figure

__all__ = ["plot_spectrogram", "plot_curves", "log_spectrogram", "spectral_flatness"]


def log_spectrogram(audio: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """Magnitude STFT in dB, [n_fft / 2 + 1, frames] (Hann window)."""
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    if len(x) < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - len(x)))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return (20 * torch.log10(spec + 1e-5)).numpy()


def plot_spectrogram(panels: dict[str, np.ndarray], path: Path, sample_rate: int = 16_000) -> Path:
    """One log-spectrogram panel per labelled audio clip, saved as PNG."""
    plt = pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), squeeze=False)
    for ax, (label, audio) in zip(axes[:, 0], panels.items()):
        spec = log_spectrogram(audio)
        ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=spec.max() - 80,
            vmax=spec.max(),
            extent=(0, len(audio) / sample_rate, 0, sample_rate / 2000),
        )
        ax.set_title(label)
        ax.set_ylabel("kHz")
    axes[-1, 0].set_xlabel("seconds")
    return save_figure(fig, path, dpi=80)


def plot_curves(curves: dict[str, list[float]], path: Path, ylabel: str = "training loss (nats)") -> Path:
    """Training curves (smoothed over 10 steps), one line per model."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curve in curves.items():
        y = np.convolve(curve, np.ones(10) / 10, mode="valid") if len(curve) >= 10 else np.asarray(curve)
        ax.plot(y, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=80)
