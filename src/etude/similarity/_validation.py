"""Input checks at the public boundary of `etude.similarity`, and its warning class.

Every public function takes representations shaped (datapoints n, neurons p) as NumPy arrays
or torch tensors on any device, and computes in torch (float64 unless asked otherwise).
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import numpy as np
import torch

from etude.errors import BadInputError, EtudeWarning

__all__ = [
    "Checked",
    "ConstantInputWarning",
    "SmallSampleWarning",
    "as_matrix",
    "as_pair",
    "as_scaled_matrix",
    "as_scaled_pair",
    "check_matrices",
    "check_matrix",
    "check_real",
    "numpy_path",
    "resolve_dtype",
    "warn_constant",
    "warn_small_sample",
]

_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    torch.float64: torch.float64,
    torch.float32: torch.float32,
    np.float64: torch.float64,
    np.float32: torch.float32,
}


class SmallSampleWarning(EtudeWarning):
    """Fewer than 5 datapoints per neuron: canonical correlations are biased towards 1.

    With n datapoints and p, q neurons, even independent representations share
    E[sum_i rho_i^2] = p q / (n - 1); the rule of thumb n >= 5 p keeps that bias small.
    """


def resolve_dtype(dtype: Any) -> torch.dtype:
    """torch.float64 or torch.float32 from a torch/NumPy dtype or its name."""
    try:
        return _DTYPES[dtype]
    except (KeyError, TypeError):
        raise BadInputError(f"dtype must be 'float64' or 'float32', got {dtype!r}") from None


def as_matrix(
    value: Any, name: str, dtype: Any = torch.float64, device: torch.device | None = None, min_rows: int = 2
) -> torch.Tensor:
    """`value` as a finite 2-D tensor (n, p) of `dtype`; anything else raises BadInputError naming `name`."""
    return as_scaled_matrix(value, name, dtype, device, min_rows, scale=False)[0]


def as_scaled_matrix(
    value: Any,
    name: str,
    dtype: Any = torch.float64,
    device: torch.device | None = None,
    min_rows: int = 2,
    *,
    scale: bool = True,
    exponent: int | None = None,
) -> tuple[torch.Tensor, int]:
    """(value / 2**e, e): `value` checked as in `as_matrix`, divided by 2**e, the power of two at or above its largest |entry|.

    Dividing by a power of two is exact, so the scaled data hold the same digits; the covariances
    and Gram matrices formed from them neither overflow nor underflow, whatever the input's scale
    (1e-150 or 1e150, float32 or float64). With scale=False, e = 0; a given ``exponent`` is used as e.
    """
    dtype = resolve_dtype(dtype)
    tensor = _as_tensor(value, name, min_rows, device)
    if not bool(torch.isfinite(tensor).all()):
        raise BadInputError(f"{name} contains NaN or infinite values (shape {tuple(tensor.shape)})")
    if exponent is None:
        largest = float(tensor.abs().max()) if scale else 0.0
        exponent = math.frexp(largest)[1] if largest > 0 else 0
    if exponent:
        tensor = torch.ldexp(tensor, torch.tensor(-exponent, device=tensor.device))
    tensor = tensor.to(dtype)
    if not bool(torch.isfinite(tensor).all()):
        raise BadInputError(
            f"{name} has values beyond the range of {dtype} (shape {tuple(tensor.shape)}); use dtype='float64'"
        )
    return tensor, exponent


UNSCALED_RANGE = 64
"""Inputs whose largest |entry| lies in [2**-64, 2**64) are used as they are: their Gram matrices
can neither overflow nor lose anything to underflow that the 10 p eps rank cut-off would keep."""


@dataclass(eq=False)
class Checked:
    """A checked representation x (n, p) = data * 2**exponent, with the column statistics of its one pass.

    :ivar data: the values (dtype as asked), divided by 2**exponent; the input itself (no copy)
        when it already has that dtype and a harmless scale (`UNSCALED_RANGE`).
    :ivar exponent: e with x = data * 2**e.
    :ivar alive: (p,) bool, the neurons that take more than one value (max > min).
    :ivar mean: (p,) column means of data; a dead neuron's mean is its one value exactly, so its
        centred column is exactly 0.
    :ivar likely_small_mean: every live neuron's |mean| is at most half its range (max - min), the
        cheap first test of whether centring may be folded into the Gram matrix (`etude.similarity.gram`
        confirms it on the Gram's diagonal); False sends large offsets straight to explicit centring.
    """

    data: torch.Tensor
    exponent: int
    alive: torch.Tensor
    mean: torch.Tensor
    likely_small_mean: bool = True
    all_alive: bool = True
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def centred(self) -> torch.Tensor:
        """X_c = data - mean (n, p), formed once on first use."""
        if "centred" not in self.cache:
            if numpy_path(self.data):  # NumPy's broadcast subtraction is 3x torch's on one CPU thread
                self.cache["centred"] = torch.from_numpy(self.data.numpy() - self.mean.numpy())
            else:
                self.cache["centred"] = self.data - self.mean
        return self.cache["centred"]


def numpy_path(tensor: torch.Tensor) -> bool:
    """Whether `tensor`'s work goes through NumPy and scipy's BLAS (CPU tensors) rather than torch."""
    return tensor.device.type == "cpu"


def _column_stats(tensor: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (min, max) as NumPy arrays, in one read of the data (NumPy's SIMD reductions on the
    CPU, aminmax elsewhere); NaN propagates to both."""
    if numpy_path(tensor):
        array = tensor.numpy()
        return np.asarray(array.min(0)), np.asarray(array.max(0))
    low, high = torch.aminmax(tensor, dim=0)
    return low.cpu().numpy(), high.cpu().numpy()


def check_matrix(
    value: Any,
    name: str,
    dtype: Any = torch.float64,
    device: torch.device | None = None,
    min_rows: int = 2,
    *,
    exponent: int | None = None,
) -> Checked:
    """`value` checked as in `as_matrix` and scaled as in `as_scaled_matrix`, in one pass over the data.

    One column-wise min/max read gives the finite check (NaN and inf propagate to it), the largest
    |entry| (the power of two) and the dead neurons (max = min); the scaling, when needed, is fused
    with the dtype conversion into one write; the column means are one more read. Centring is left
    to the consumer (`etude.similarity.gram` folds it into the Gram matrices where that is exact
    enough), so no centred copy is made unless one is asked for. The (p,) statistics are NumPy
    work: a handful of small operations, not dozens of tensor dispatches.
    """
    dtype = resolve_dtype(dtype)
    tensor = _as_tensor(value, name, min_rows, device)
    low, high = _column_stats(tensor)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise BadInputError(f"{name} contains NaN or infinite values (shape {tuple(tensor.shape)})")
    if exponent is None:
        largest = float(max(-float(low.min()), float(high.max())))
        exponent = math.frexp(largest)[1] if largest > 0 else 0
        if -UNSCALED_RANGE <= exponent <= UNSCALED_RANGE and tensor.dtype == dtype:
            exponent = 0
    data = _times_power_of_two(tensor, -exponent, dtype) if exponent else tensor.to(dtype)
    cpu = numpy_path(data)
    if cpu and not data.is_contiguous():
        data = data.contiguous()
    mean = data.numpy().mean(0) if cpu else data.mean(0).cpu().numpy()
    alive = high > low
    if not alive.all():
        dead = ~alive
        mean[dead] = (data[0].numpy() if cpu else data[0].cpu().numpy())[dead]  # the one value: centred exactly 0
    half_range = np.ldexp(high.astype(np.float64) - low, -1 - exponent)
    small = bool((np.abs(mean) <= half_range)[alive].all())
    mean_t, alive_t = torch.from_numpy(mean), torch.from_numpy(alive)
    if not cpu:
        mean_t, alive_t = mean_t.to(data.device), alive_t.to(data.device)
    return Checked(data, exponent, alive_t, mean_t, small, bool(alive.all()))


def _times_power_of_two(tensor: torch.Tensor, power: int, dtype: torch.dtype) -> torch.Tensor:
    """tensor * 2**power as `dtype`, one pass where 2**power is a normal number of tensor's dtype, else through ldexp."""
    normal = -1022 <= power <= 1023 if tensor.dtype == torch.float64 else -126 <= power <= 127
    if normal and numpy_path(tensor):
        out_array = np.empty(tuple(tensor.shape), dtype=np.float64 if dtype == torch.float64 else np.float32)
        np.multiply(tensor.numpy(), math.ldexp(1.0, power), out=out_array, casting="same_kind")
        return torch.from_numpy(out_array)
    if normal:
        out = torch.empty(tensor.shape, dtype=dtype, device=tensor.device)
        return torch.mul(tensor, math.ldexp(1.0, power), out=out)
    return torch.ldexp(tensor, torch.tensor(power, device=tensor.device)).to(dtype)


def check_matrices(
    values: list[Any], names: list[str], dtype: Any = torch.float64, min_rows: int = 2, *, pairwise: bool = False
) -> list[Checked]:
    """Each value checked by `check_matrix`, all on one device, with the same number of datapoints.

    The error for a row mismatch names the first input and the mismatching one.
    """
    device = next((v.device for v in values if isinstance(v, torch.Tensor)), None)
    checked = [check_matrix(v, name, dtype, device, min_rows) for v, name in zip(values, names)]
    for c, name in zip(checked[1:], names[1:]):
        if c.shape[0] != checked[0].shape[0]:
            a = tuple(checked[0].shape)
            if not pairwise:
                raise BadInputError(
                    f"{names[0]} and {name} must have the same number of datapoints (rows, the same "
                    f"inputs in the same order): {names[0]} has shape {a}, {name} has shape {tuple(c.shape)}"
                )
            raise BadInputError(
                f"every representation needs the same datapoints: {names[0]} has shape {a}, "
                f"{name} has shape {tuple(c.shape)}"
            )
    return checked


def _as_tensor(value: Any, name: str, min_rows: int, device: torch.device | None) -> torch.Tensor:
    """`value` as a real 2-D float32/float64 tensor on `device` (shape and type checks; no value checks)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise BadInputError(f"{name} must hold real numbers, got a NumPy array of dtype {value.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(value))
    else:
        raise BadInputError(
            f"{name} must be a NumPy array or a torch tensor shaped (datapoints, neurons), got {type(value).__name__}"
        )
    if tensor.is_complex():
        raise BadInputError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    if tensor.ndim != 2:
        hint = " (flatten conv activations with flatten_conv or pool_conv)" if tensor.ndim == 4 else ""
        raise BadInputError(f"{name} must be 2-D (datapoints n, neurons p), got shape {tuple(tensor.shape)}{hint}")
    if tensor.shape[0] < min_rows or tensor.shape[1] < 1:
        raise BadInputError(
            f"{name} needs at least {min_rows} datapoints and 1 neuron, got shape {tuple(tensor.shape)}"
        )
    if device is not None and tensor.device != device:
        if isinstance(value, torch.Tensor):
            raise BadInputError(
                f"{name} is on {tensor.device} but the other input is on {device}; move both to one device"
            )
        tensor = tensor.to(device)
    if not tensor.is_floating_point() or tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float64)
    return tensor


def as_pair(
    x: Any,
    y: Any,
    dtype: Any = torch.float64,
    min_rows: int = 2,
    *,
    scale: bool = False,
    names: tuple[str, str] = ("x", "y"),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both inputs checked, on one device, with the same number of datapoints (scaled as in `as_scaled_matrix`)."""
    return as_scaled_pair(x, y, dtype, min_rows, scale=scale, names=names)[:2]


def as_scaled_pair(
    x: Any,
    y: Any,
    dtype: Any = torch.float64,
    min_rows: int = 2,
    *,
    scale: bool = True,
    names: tuple[str, str] = ("x", "y"),
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """(x / 2**ex, y / 2**ey, ex, ey): both inputs checked and scaled by powers of two, see `as_scaled_matrix`."""
    device = x.device if isinstance(x, torch.Tensor) else (y.device if isinstance(y, torch.Tensor) else None)
    tx, sx = as_scaled_matrix(x, names[0], dtype, device, min_rows, scale=scale)
    ty, sy = as_scaled_matrix(y, names[1], dtype, device, min_rows, scale=scale)
    if tx.shape[0] != ty.shape[0]:
        raise BadInputError(
            f"{names[0]} and {names[1]} must have the same number of datapoints (rows, the same "
            f"inputs in the same order): {names[0]} has shape {tuple(tx.shape)}, {names[1]} has "
            f"shape {tuple(ty.shape)}"
        )
    return tx, ty, sx, sy


def check_real(
    value: Any, name: str, low: float = -math.inf, high: float = math.inf, *, low_open: bool = False
) -> float:
    """`value` (a Python or NumPy real, not a bool) as a float in [low, high] (or (low, high]); else BadInputError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    number = float(value) if ok else math.nan
    if not (ok and math.isfinite(number) and (low < number if low_open else low <= number) and number <= high):
        bracket = "(" if low_open else "["
        raise BadInputError(f"{name} must be a finite number in {bracket}{low:g}, {high:g}], got {value!r}")
    return number


class ConstantInputWarning(EtudeWarning):
    """One side has no variance (every neuron constant): its similarity to anything is reported as 0."""


def warn_constant(name: str) -> None:
    """Warn with ConstantInputWarning (pointing at the user's call) that `name` has no variance."""
    warnings.warn(
        f"{name} has no variance (every neuron is constant on these datapoints): the similarity is "
        f"undefined and reported as 0",
        ConstantInputWarning,
        stacklevel=_caller_stacklevel(),
    )


def _caller_stacklevel() -> int:
    """The stacklevel that points a warning at the first frame outside etude.similarity."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    return level


def warn_small_sample(name: str, n: int, p: int) -> None:
    """Warn with SmallSampleWarning (pointing at the user's call) when n < 5 p."""
    if n < 5 * p:
        warnings.warn(
            f"{name} has n={n} datapoints for p={p} neurons (n < 5p): canonical correlations are "
            f"biased towards 1 (independent data give mean rho^2 ~ p/n); use more datapoints, SVCCA "
            f"with fewer directions, or CKA",
            SmallSampleWarning,
            stacklevel=_caller_stacklevel(),
        )
