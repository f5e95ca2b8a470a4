"""Inputs that would need more memory than a stated limit are refused up front, in one line."""

from __future__ import annotations

import pytest
import torch

from etude.errors import BadInputError


def test_elbo_refuses_a_sample_count_beyond_the_memory_limit() -> None:
    """elbo(..., RQMC(3), 10**12) allocated 23.8 GB and was killed; now a one-line refusal naming the limit."""
    from etude.vi.elbo import MAX_DRAW_BYTES, elbo
    from etude.vi.families import MeanFieldGaussian
    from etude.vi.qmc import RQMC

    family = MeanFieldGaussian(3)
    with pytest.raises(BadInputError) as refused:
        elbo(lambda z: -(z**2).sum(-1), family, RQMC(3), 10**12)
    assert "MAX_DRAW_BYTES" in str(refused.value) and "\n" not in str(refused.value)
    largest = MAX_DRAW_BYTES // (3 * 8)  # float64 draws of dim 3: the largest n allowed
    with pytest.raises(BadInputError):
        elbo(lambda z: -(z**2).sum(-1), family, RQMC(3), largest + 1)
    value = elbo(lambda z: -(z**2).sum(-1), family, RQMC(3, seed=0), 256)
    assert torch.isfinite(value)
