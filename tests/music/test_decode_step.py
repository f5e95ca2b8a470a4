"""The fused decoding step equals the model's full forward pass and its module-level cached step."""

from __future__ import annotations

import pytest
import torch

from etude.music import TransformerAutoencoder, TransformerConfig
from etude.music.decode_step import DecodeStep, supports
from etude.music.generate import generate


def _model(conditioning: str, relative: bool, absolute: bool, seed: int = 0) -> TransformerAutoencoder:
    torch.manual_seed(seed)
    cfg = TransformerConfig(dim=16, heads=2, layers=2, ff=32, max_len=40, dropout=0.0, relative=relative,
                            absolute=absolute)
    return TransformerAutoencoder(cfg, conditioning, "sum", encoder_layers=1).eval()


@pytest.mark.parametrize("conditioning,relative,absolute,primer", [
    ("none", True, False, 1), ("none", False, True, 4), ("none", True, True, 1),
    ("performance", True, False, 4), ("melody+performance", True, True, 1), ("melody+performance", True, False, 4),
])
def test_step_logits_equal_the_full_forward_pass(conditioning, relative, absolute, primer):
    model = _model(conditioning, relative, absolute)
    torch.manual_seed(1)
    x = torch.randint(2, 390, (3, 30))
    perf, mel = torch.randint(2, 390, (3, 9)), torch.randint(4, 92, (3, 7))
    perf[1, 6:] = 0  # a padded performance: its PAD steps are masked in the cross-attention
    with torch.no_grad():
        if conditioning == "none":
            full, memory, padding = model(x), None, None
        else:
            pad = perf == 0 if "performance" in conditioning else None
            full = model(x, perf, mel if "melody" in conditioning else None, pad)
            memory, padding = model.memory(perf, mel if "melody" in conditioning else None, pad, None)
        decoder = model.decoder
        assert supports(decoder)
        step = DecodeStep(decoder, 3, 30, memory, padding)
        pieces = [step.prefill(x[:, :primer])]
        pieces += [step(x[:, t]) for t in range(primer, 30)]
    torch.testing.assert_close(torch.stack(pieces, 1), full[:, primer - 1:], atol=1e-5, rtol=0)
    assert step.length == 30


def test_fused_generation_equals_the_module_step():
    model = _model("melody+performance", True, False, seed=3)
    perf, mel = torch.randint(2, 390, (1, 9)), torch.randint(4, 92, (1, 7))
    for batch in (1, 4):
        fused = generate(model, batch, max_length=30, performance=perf, melody=mel, seed=2, eos=None)
        plain = generate(model, batch, max_length=30, performance=perf, melody=mel, seed=2, eos=None, fused=False)
        assert torch.equal(fused, plain)
