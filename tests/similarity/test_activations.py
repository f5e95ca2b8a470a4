"""Activation capture with forward hooks, and conv-activation reshaping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from etude.errors import BadInputError
from etude.similarity import ActivationCapture, capture_activations, flatten_conv, pool_conv


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                         nn.Linear(3 * 4 * 5, 4))


def test_flatten_conv_makes_positions_datapoints():
    acts = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5)
    flat = flatten_conv(acts)
    assert flat.shape == (2 * 4 * 5, 3)
    for i, c, h, w in [(0, 0, 0, 0), (1, 2, 3, 4), (1, 1, 2, 0), (0, 2, 1, 3)]:
        assert flat[i * 20 + h * 5 + w, c] == acts[i, c, h, w]
    as_numpy = flatten_conv(acts.numpy())
    assert isinstance(as_numpy, np.ndarray) and np.array_equal(as_numpy, flat.numpy())
    assert torch.equal(flatten_conv(acts.permute(0, 2, 3, 1), channels_last=True), flat)


def test_pool_conv():
    acts = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(pool_conv(acts), acts.mean((2, 3)))
    assert torch.equal(pool_conv(acts, "max"), acts.amax((2, 3)))
    assert np.allclose(pool_conv(acts.permute(0, 2, 3, 1).numpy(), channels_last=True), acts.mean((2, 3)).numpy())
    with pytest.raises(BadInputError, match="mode"):
        pool_conv(acts, "median")
    with pytest.raises(BadInputError, match=r"4-D.*\(2, 3\)"):
        flatten_conv(torch.zeros(2, 3))


def test_capture_equals_the_manual_forward_in_eval_mode_and_restores_training():
    net = _net()
    net.train()
    x = torch.randn(7, 2, 4, 5, generator=torch.Generator().manual_seed(1))
    acts = capture_activations(net, x, ["1", "4"], batch_size=3)
    with torch.no_grad():
        relu = net[1](net[0](x))
        logits = net[4](net[3](relu))  # dropout is the identity in eval mode
    assert torch.allclose(acts["1"], relu) and torch.allclose(acts["4"], logits)
    assert not acts["1"].requires_grad
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())


def test_hooks_are_removed_when_the_forward_raises():
    net = _net()
    with pytest.raises(RuntimeError):
        capture_activations(net, torch.zeros(2, 5, 4, 5), ["1"])  # wrong channel count
    assert all(not m._forward_hooks for m in net.modules())
    assert net.training


def test_activation_capture_context_with_a_mapping():
    net = _net()
    with ActivationCapture(net, {"conv": net[0]}) as capture:
        net(torch.zeros(2, 2, 4, 5))
        net(torch.ones(3, 2, 4, 5))
    assert capture.activations["conv"].shape == (5, 3, 4, 5)
    net(torch.zeros(1, 2, 4, 5))  # after the context: not recorded
    assert capture.activations["conv"].shape[0] == 5
    capture.clear()
    with pytest.raises(BadInputError, match="no activations recorded"):
        capture.activations


def test_unknown_layer_lists_the_names():
    with pytest.raises(BadInputError) as info:
        capture_activations(_net(), torch.zeros(1, 2, 4, 5), ["fc9"])
    assert "'fc9'" in str(info.value) and "'0'" in str(info.value)
    with pytest.raises(BadInputError, match="batch_size"):
        capture_activations(_net(), torch.zeros(1, 2, 4, 5), ["0"], batch_size=0)
