"""The encoders' positions, the concat rule (melody, separator, style) and the checkpoint layout."""

from __future__ import annotations

import pytest
import torch

from etude.errors import CheckpointError
from etude.music import TransformerAutoencoder, TransformerConfig, load_model, save_model
from etude.music.attention import sinusoids
from etude.music.autoencoder import LAYOUT
from etude.runtime import load_checkpoint, save_checkpoint


def tiny(conditioning="melody+performance", combine="sum", pool=True, layers=1, seed=0, **cfg):
    torch.manual_seed(seed)
    config = TransformerConfig(**{**dict(dim=16, heads=2, layers=1, ff=32, max_len=24, dropout=0.0), **cfg})
    return TransformerAutoencoder(config, conditioning, combine, pool, encoder_layers=layers).eval()


def test_absolute_encoder_input_is_embedding_plus_sinusoids():
    # no encoder layers: the output is LayerNorm(sqrt(D) E[x_t] + PE(t)), exactly the decoder's input rule
    model = tiny("performance", pool=False, layers=0, relative=False, absolute=True)
    enc = model.performance_encoder
    x = torch.randint(2, 390, (2, 9))
    expected = enc.norm(enc.embed(x) * 16 ** 0.5 + sinusoids(9, 16))
    with torch.no_grad():
        torch.testing.assert_close(enc(x), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("relative,absolute", [(False, True), (True, False)])
@pytest.mark.parametrize("which", ["performance", "melody"])
def test_encoders_are_not_a_bag_of_tokens(which, relative, absolute):
    # without positions plain self-attention is permutation-equivariant: enc(x[perm]) == enc(x)[perm];
    # absolute sinusoids (or the relative term) must break that
    model = tiny("melody+performance", relative=relative, absolute=absolute)
    enc = model.performance_encoder if which == "performance" else model.melody_encoder
    torch.manual_seed(1)
    x = torch.randint(2, 390, (1, 12)) if which == "performance" else torch.randint(4, 92, (1, 12))
    perm = torch.randperm(12)
    with torch.no_grad():
        assert (enc(x[:, perm]) - enc(x)[:, perm]).abs().max() > 1e-3


def test_without_positions_the_encoder_would_be_a_bag_of_tokens():
    # the control for the test above: relative=False and absolute=False is permutation-equivariant
    model = tiny("performance", relative=False, absolute=False)
    enc = model.performance_encoder
    x = torch.randint(2, 390, (1, 12))
    perm = torch.randperm(12)
    with torch.no_grad():
        torch.testing.assert_close(enc(x[:, perm]), enc(x)[:, perm], atol=1e-5, rtol=0)


def test_unpooled_absolute_memory_carries_positions():
    # the copying baseline's memory at step t depends on t (not only on the token there)
    model = tiny("performance", pool=False, relative=False, absolute=True)
    x = torch.full((1, 10), 77)
    with torch.no_grad():
        memory, _ = model.memory(x)
    assert (memory[0, 0] - memory[0, 5]).abs().max() > 1e-3


def test_concat_is_melody_then_separator_then_style():
    model = tiny("melody+performance", "concat")
    perf, mel = torch.randint(2, 390, (2, 10)), torch.randint(4, 92, (2, 7))
    mel_pad = torch.zeros(2, 7, dtype=torch.bool)
    mel_pad[1, 5:] = True
    with torch.no_grad():
        memory, padding = model.memory(perf, mel, melody_padding=mel_pad)
        m = model.melody_encoder(mel, mel_pad)
        s = model.style(perf)
    assert memory.shape == (2, 9, 16)
    torch.testing.assert_close(memory[:, :7], m, atol=0, rtol=0)
    assert torch.equal(memory[:, 7], torch.zeros(2, 16))  # magenta's zero "stop token"
    torch.testing.assert_close(memory[:, 8], s, atol=0, rtol=0)
    assert torch.equal(padding, torch.cat([mel_pad, torch.zeros(2, 2, dtype=torch.bool)], 1))  # never masked
    one, one_pad = model.memory(perf, mel[:, :1], melody_padding=mel_pad[:, :1])  # a one-step melody
    assert one.shape == (2, 3, 16) and one_pad.shape == (2, 3) and not one_pad.any()


def test_checkpoint_round_trip(tmp_path):
    model = tiny("melody+performance", "concat")
    save_model(tmp_path / "m.pt", model)
    back = load_model(tmp_path / "m.pt")
    perf, mel = torch.randint(2, 390, (1, 10)), torch.randint(4, 92, (1, 7))
    x = torch.randint(2, 390, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(back(x, perf, mel), model(x, perf, mel), atol=0, rtol=0)


def test_old_layout_checkpoint_is_a_clear_error(tmp_path):
    save_model(tmp_path / "m.pt", tiny("performance"))
    state = load_checkpoint(tmp_path / "m.pt")
    del state["layout"]  # a checkpoint written before the encoders had positions
    save_checkpoint(tmp_path / "old.pt", state)
    with pytest.raises(CheckpointError, match="layout 1.*retrain"):
        load_model(tmp_path / "old.pt")


def test_mismatched_weights_are_a_clear_error(tmp_path):
    save_model(tmp_path / "m.pt", tiny("performance"))
    state = load_checkpoint(tmp_path / "m.pt")
    state["model"] = {k: v for k, v in state["model"].items() if "performance_encoder" not in k}
    save_checkpoint(tmp_path / "bad.pt", state)
    with pytest.raises(CheckpointError, match="not hold a valid model"):
        load_model(tmp_path / "bad.pt")


def test_resuming_from_an_old_layout_training_checkpoint_is_refused(tmp_path):
    from etude.music import Crops, fit

    model = tiny("performance")
    data = Crops(torch.randint(2, 390, (8, 11)), torch.randint(4, 92, (8, 12)))
    fit(model, data, steps=2, batch_size=4, lr=1e-3, seed=0, checkpoint=tmp_path / "c.pt", show_progress=False)
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["config"]["layout"] == LAYOUT  # the runtime loop's checkpoint keeps fit's whole configuration
    del state["config"]["layout"]
    save_checkpoint(tmp_path / "c.pt", state)
    with pytest.raises(CheckpointError, match="layout"):
        fit(tiny("performance"), data, steps=2, batch_size=4, lr=1e-3, seed=0, checkpoint=tmp_path / "c.pt",
            resume=True, show_progress=False)
