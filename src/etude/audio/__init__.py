"""Raw-audio music (Dieleman, van den Oord, Simonyan, NeurIPS 2018, arXiv:1806.10474).

mu-law, fluidsynth rendering with a content-hash cache, WaveNet with cached generation, VQ and
argmax bottlenecks, and hierarchies of autoregressive discrete autoencoders::

    from etude.audio import WaveNet, mulaw_encode
    net = WaveNet(layers=8).eval()                      # receptive field 256
    x = net.generate(1600)                              # cached generation, [1, 1600] classes
    torch.allclose(net.cached_logits(x), net(x), atol=1e-5)   # True
"""

from etude.audio.bottlenecks import ArgmaxQuantizer, Quantized, VectorQuantizer, code_entropy, codebook_usage
from etude.audio.hierarchy import (
    BOTTLENECKS,
    AutoEncoder,
    Encoder,
    Hierarchy,
    HierarchyConfig,
    LevelConfig,
    load_hierarchy,
    save_hierarchy,
)
from etude.audio.listening import listen
from etude.audio.metrics import (
    audio_metrics,
    chroma_agreement,
    judge_reconstruction,
    judge_sample,
    log_mel,
    log_mel_distance,
    mulaw_round_trip,
    spectral_flatness,
    white_noise_like,
)
from etude.audio.mulaw import mulaw_decode, mulaw_encode
from etude.audio.render import (
    SAMPLE_RATE,
    find_soundfont,
    fluidsynth_available,
    midi_preview,
    piano_dataset,
    read_wav,
    render_midi,
    render_performance,
    write_wav,
)
from etude.audio.wavenet import WaveNet, receptive_field, upsample_codes

__all__ = [
    "ArgmaxQuantizer",
    "AutoEncoder",
    "BOTTLENECKS",
    "Encoder",
    "Hierarchy",
    "HierarchyConfig",
    "LevelConfig",
    "Quantized",
    "SAMPLE_RATE",
    "VectorQuantizer",
    "WaveNet",
    "audio_metrics",
    "chroma_agreement",
    "code_entropy",
    "codebook_usage",
    "find_soundfont",
    "fluidsynth_available",
    "judge_reconstruction",
    "judge_sample",
    "listen",
    "load_hierarchy",
    "log_mel",
    "log_mel_distance",
    "midi_preview",
    "mulaw_decode",
    "mulaw_encode",
    "mulaw_round_trip",
    "piano_dataset",
    "read_wav",
    "receptive_field",
    "render_midi",
    "render_performance",
    "save_hierarchy",
    "spectral_flatness",
    "upsample_codes",
    "white_noise_like",
    "write_wav",
]
