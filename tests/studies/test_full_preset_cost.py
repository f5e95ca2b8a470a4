"""benchmarks/full_preset_cost.py: the FLOPs it counts per training step and the projection it makes of them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "full_preset_cost.py"


@pytest.fixture(scope="module")
def cost():
    spec = importlib.util.spec_from_file_location("full_preset_cost", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["full_preset_cost"] = module
    spec.loader.exec_module(module)
    return module


def _linear_case(cost, batch: int, measured_batch: int, m: int = 7, n: int = 5, timed: bool = True):
    def build(b: int, length: int = 0):
        layer = nn.Linear(n, m, bias=False)
        return layer, lambda: layer(torch.randn(b, n)).sum()

    return cost.Case("toy", "linear", 3, 10, batch, f"{batch} x {n}", "32-true", build, measured_batch, timed=timed)


def test_step_flops_are_forward_plus_backward_products(cost):
    """A bias-free Linear n -> m on a batch of k: forward 2kmn, backward 2kmn for the weight's gradient
    (the data needs none); the counted step includes both, and not the optimizer."""
    k, m, n = 6, 7, 5
    case = _linear_case(cost, k, 0, m, n, timed=False)
    cost.measure(case, steps=1)
    assert case.figures["flops_per_step"] == 2 * 2 * k * m * n
    half = _linear_case(cost, 2 * k, k, m, n, timed=False)  # counted at batch k, scaled linearly to 2k
    cost.measure(half, steps=1)
    assert half.figures["flops_per_step"] == 2 * 2 * (2 * k) * m * n
    assert half.figures["cpu_s_per_step_1t"] == pytest.approx(2 * half.figures["cpu_s_per_step_1t_measured"])


def test_projection_takes_the_larger_bound_and_sums_trainings(cost):
    case = _linear_case(cost, 4, 0)
    case.figures = {"flops_per_step": 1e13, "kernels_per_step": 100, "parameters": 0, "cpu_s_per_step_1t": 2.0}
    small = _linear_case(cost, 4, 0, timed=False)
    small.figures = {"flops_per_step": 1e6, "kernels_per_step": 100, "parameters": 0, "cpu_s_per_step_1t": 0.5}
    totals = cost.project([case, small])
    compute = 1e13 / (cost.PEAK["32-true"] * cost.MFU_LARGE)
    latency = 100 * cost.LAUNCH_S
    assert compute > latency  # the large step is compute-bound, the small one latency-bound
    n = case.trainings * case.steps
    assert totals["h100_1_s"] == pytest.approx(n * compute + n * latency)
    assert totals["cpu_2core_s"] == pytest.approx(n * 2.0 + n * 0.5)
    assert small.figures["h100_bound"] == "latency" and case.figures["h100_bound"] == "compute"
    # 8 GPUs shorten only the compute-bound step
    assert case.figures["h100x8_s_per_step"] < compute / 7
    assert small.figures["h100x8_s_per_step"] >= latency
