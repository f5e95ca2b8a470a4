"""Hear a trained hierarchy: reconstruct held-out audio from its codes at every level, sample it
ancestrally, measure every clip (`etude.audio.metrics`) and write WAVs and a spectrogram panel.

Dieleman, van den Oord, Simonyan, NeurIPS 2018 (arXiv:1806.10474), Sec. 3-4: a level is judged by
what its decoder makes of the codes of real audio (reconstruction), the stack by its samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from etude.audio.hierarchy import Hierarchy
from etude.audio.metrics import audio_metrics, judge_reconstruction, judge_sample, mulaw_round_trip, white_noise_like
from etude.audio.mulaw import mulaw_decode, mulaw_encode
from etude.audio.plots import plot_spectrogram
from etude.audio.render import SAMPLE_RATE, write_wav
from etude.audio.wavenet import WaveNet

__all__ = ["listen"]


def _label(name: str, m: dict[str, float]) -> str:
    return (
        f"{name}: mel {m['mel_db']:.1f} dB, spectrum {m['spectrum_db']:.1f} dB, flatness {m['flatness']:.2g}, "
        f"chroma {m['chroma']:.2f}"
    )


@torch.no_grad()
def listen(
    model: Hierarchy,
    baseline: WaveNet | None,
    reference: np.ndarray,
    out_dir: Path,
    *,
    samples: int,
    temperature: float = 1.0,
    seed: int = 0,
) -> tuple[dict, list[str]]:
    """Reconstructions at every level, a hierarchy sample and a baseline sample, judged and written.

    :param reference: held-out audio in [-1, 1]; cut to a multiple of the total hop.
    :returns: (figures: {'reconstruction': [{passes, candidate, noise, ceiling} per level], 'sample': ...,
        'wavenet_sample': ..., 'clips': {name: metrics}}, artifact names).
    """
    out_dir = Path(out_dir)
    hop = model.total_hop
    reference = np.asarray(reference, dtype=np.float32)[: len(reference) // hop * hop]
    x = mulaw_encode(torch.from_numpy(np.clip(reference, -1, 1)), model.config.levels[0].classes).unsqueeze(0)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    clips = {
        "input (held-out rendered Bach)": reference,
        "8-bit mu-law round trip (ceiling)": mulaw_round_trip(reference),
        "white noise, same RMS": white_noise_like(reference, seed),
    }
    files = {"input (held-out rendered Bach)": "heldout.wav"}
    figures: dict = {"reconstruction": []}
    for level in range(len(model.levels)):
        classes = model.reconstruct(x.to(device), level, generator=generator, temperature=temperature)
        audio = mulaw_decode(classes[0].cpu(), model.config.levels[0].classes).numpy()
        passes, judged = judge_reconstruction(reference, audio, seed)
        figures["reconstruction"].append({"passes": passes, **judged})
        name = f"reconstruction from level-{level} codes (hop {_hop_upto(model, level)})"
        clips[name], files[name] = audio, f"reconstruction_level{level}.wav"
    audio = model.sample(samples, generator=generator, temperature=temperature).numpy()
    passes, judged = judge_sample(reference, audio, seed)
    figures["sample"] = {"passes": passes, **judged}
    clips["sample of the hierarchy (prior -> decoders)"] = audio
    files["sample of the hierarchy (prior -> decoders)"] = "sample.wav"
    if baseline is not None:
        classes = baseline.generate(samples, generator=generator, temperature=temperature)
        audio = mulaw_decode(classes[0].cpu(), baseline.classes).numpy()
        passes, judged = judge_sample(reference, audio, seed)
        figures["wavenet_sample"] = {"passes": passes, **judged}
        clips["sample of the unconditional WaveNet"], files["sample of the unconditional WaveNet"] = (
            audio,
            "sample_wavenet.wav",
        )
    figures["clips"] = {name: audio_metrics(reference, audio) for name, audio in clips.items()}
    artifacts = [write_wav(out_dir / files[name], clips[name], SAMPLE_RATE).name for name in files]
    panels = {_label(name, figures["clips"][name]): audio for name, audio in clips.items()}
    artifacts.append(plot_spectrogram(panels, out_dir / "spectrogram.png").name)
    return figures, artifacts


def _hop_upto(model: Hierarchy, level: int) -> int:
    hop = 1
    for cfg in model.config.levels[: level + 1]:
        hop *= cfg.hop
    return hop
