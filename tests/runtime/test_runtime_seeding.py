"""seed_everything makes python, numpy and torch draws repeatable; set_threads validates."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from etude.errors import BadInputError
from etude.runtime import MAX_SEED, seed_everything, set_threads


def _draws(seed: int) -> tuple[list[float], np.ndarray, torch.Tensor, torch.Tensor]:
    """One draw from each generator right after seeding with ``seed``."""
    generator = seed_everything(seed)
    return (
        [random.random() for _ in range(3)],
        np.random.rand(3),
        torch.rand(3),
        torch.rand(3, generator=generator),
    )


@pytest.mark.parametrize("seed", [0, 7, 2024, MAX_SEED])
def test_same_seed_same_draws(seed: int) -> None:
    first, second = _draws(seed), _draws(seed)
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    assert torch.equal(first[2], second[2])
    assert torch.equal(first[3], second[3])


@pytest.mark.parametrize("seed", [0, 7, 2024])
def test_different_seeds_different_draws(seed: int) -> None:
    first, second = _draws(seed), _draws(seed + 1)
    assert first[0] != second[0]
    assert not np.array_equal(first[1], second[1])
    assert not torch.equal(first[2], second[2])
    assert not torch.equal(first[3], second[3])


def test_returned_generator_is_independent_of_global_torch_state() -> None:
    generator = seed_everything(5)
    torch.rand(100)  # consuming the global generator must not move the returned one
    expected = torch.rand(3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(3, generator=generator), expected)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, None, MAX_SEED + 1])
def test_bad_seed_raises(seed: object) -> None:
    with pytest.raises(BadInputError, match="seed") as info:
        seed_everything(seed)  # type: ignore[arg-type]
    assert repr(seed) in str(info.value)


def test_set_threads_sets_and_none_keeps() -> None:
    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        set_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("n", [0, -2, 1.0, "2", False])
def test_set_threads_bad_value_raises(n: object) -> None:
    with pytest.raises(BadInputError, match="threads"):
        set_threads(n)  # type: ignore[arg-type]
