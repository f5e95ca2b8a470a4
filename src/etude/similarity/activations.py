"""Getting representations out of networks: forward-hook capture and conv-activation reshaping.

Conv layers (Raghu et al. 2017, arXiv:1706.05806, Sec. 2): a channel is a neuron, and either every
spatial position of every image is a datapoint (`flatten_conv`, (N, C, H, W) -> (N H W, C)) or
the spatial positions are averaged away (`pool_conv`, -> (N, C)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = ["ActivationCapture", "capture_activations", "flatten_conv", "pool_conv"]

_POOLS = ("mean", "max")


def _conv_tensor(acts: Any, name: str) -> tuple[torch.Tensor, bool]:
    if isinstance(acts, np.ndarray):
        tensor, was_numpy = torch.from_numpy(np.ascontiguousarray(acts)), True
    elif isinstance(acts, torch.Tensor):
        tensor, was_numpy = acts, False
    else:
        raise BadInputError(f"{name} must be a NumPy array or torch tensor, got {type(acts).__name__}")
    if tensor.ndim != 4:
        raise BadInputError(f"{name} must be 4-D conv activations (N, C, H, W), got shape {tuple(tensor.shape)}")
    return tensor, was_numpy


def flatten_conv(acts: Any, channels_last: bool = False) -> Any:
    """Conv activations (N, C, H, W) as (N H W, C): each position of each image is a datapoint.

    :param channels_last: the input is (N, H, W, C) instead.
    :returns: the same kind (NumPy or torch) as the input; rows run over images, then H, then W.
    """
    tensor, was_numpy = _conv_tensor(acts, "acts")
    if not channels_last:
        tensor = tensor.permute(0, 2, 3, 1)
    out = tensor.reshape(-1, tensor.shape[-1])
    return out.numpy() if was_numpy else out


def pool_conv(acts: Any, mode: str = "mean", channels_last: bool = False) -> Any:
    """Conv activations (N, C, H, W) pooled over space to (N, C) by "mean" or "max"."""
    if mode not in _POOLS:
        raise BadInputError(f"mode must be one of {_POOLS}, got {mode!r}")
    tensor, was_numpy = _conv_tensor(acts, "acts")
    dims = (1, 2) if channels_last else (2, 3)
    out = tensor.mean(dims) if mode == "mean" else tensor.amax(dims)
    return out.numpy() if was_numpy else out


def _resolve(model: nn.Module, layers: Sequence[str] | Mapping[str, nn.Module]) -> dict[str, nn.Module]:
    if isinstance(layers, Mapping):
        resolved = dict(layers)
        bad = [k for k, v in resolved.items() if not isinstance(v, nn.Module)]
        if bad:
            raise BadInputError(
                f"layers must map names to nn.Module objects; {bad[0]!r} maps to {type(resolved[bad[0]]).__name__}"
            )
        return resolved
    if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
        raise BadInputError(f"layers must be a non-empty list of module names (model.named_modules()), got {layers!r}")
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        known = [k for k in modules if k][:20]
        raise BadInputError(
            f"model has no module {missing[0]!r}; expected names from model.named_modules(), such as {known}"
        )
    return {name: modules[name] for name in layers}


class ActivationCapture:
    """Records the outputs of named submodules on every forward pass while the context is open.

    >>> with ActivationCapture(model, ["fc1", "fc2"]) as capture:
    ...     model(batch_1); model(batch_2)
    >>> capture.activations["fc1"]          # the batches' outputs concatenated along dim 0

    Hooks are removed on exit, also when the forward pass raises.

    :param model: the network.
    :param layers: names from ``model.named_modules()``, or a mapping name -> module.
    :param device: where to keep the recorded activations (default: the CPU).
    """

    def __init__(
        self, model: nn.Module, layers: Sequence[str] | Mapping[str, nn.Module], device: str | torch.device = "cpu"
    ) -> None:
        self.layers = _resolve(model, layers)
        self.device = torch.device(device)
        self._batches: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self._handles: list[Any] = []

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise BadInputError(
                    f"layer {name!r} returned a {type(output).__name__}, not a tensor; "
                    f"capture a submodule whose output is a tensor"
                )
            self._batches[name].append(output.detach().to(self.device))

        return record

    def __enter__(self) -> ActivationCapture:
        self._handles = [module.register_forward_hook(self._hook(name)) for name, module in self.layers.items()]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @property
    def activations(self) -> dict[str, torch.Tensor]:
        """Layer name -> its outputs of every recorded batch, concatenated along dim 0."""
        empty = [name for name, batches in self._batches.items() if not batches]
        if empty:
            raise BadInputError(f"no activations recorded for layer {empty[0]!r}: run the model inside the context")
        return {name: torch.cat(batches, 0) for name, batches in self._batches.items()}

    def clear(self) -> None:
        """Forget what was recorded."""
        for batches in self._batches.values():
            batches.clear()


def capture_activations(
    model: nn.Module, inputs: Any, layers: Sequence[str] | Mapping[str, nn.Module], batch_size: int | None = None
) -> dict[str, torch.Tensor]:
    """Outputs of the named layers for `inputs` (N, ...), in eval mode and without gradients.

    The model's training flag is restored afterwards. Outputs are on the CPU, (N, ...) per layer;
    reshape conv outputs with `flatten_conv` or `pool_conv`.

    :param batch_size: forward `inputs` in chunks of this many rows (None: all at once).
    """
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(np.ascontiguousarray(inputs))
    if not isinstance(inputs, torch.Tensor) or inputs.ndim == 0:
        raise BadInputError(f"inputs must be a tensor or array shaped (N, ...), got {type(inputs).__name__}")
    if batch_size is not None:
        check_int("batch_size", batch_size, 1)
    was_training = model.training
    model.eval()
    try:
        with ActivationCapture(model, layers) as capture, torch.no_grad():
            for chunk in inputs.split(batch_size or max(len(inputs), 1)):
                model(chunk)
        return capture.activations
    finally:
        model.train(was_training)
