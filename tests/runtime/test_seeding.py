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


def test_generator_seed_keeps_small_values_and_folds_the_rest() -> None:
    from etude.runtime.seeding import generator_seed

    assert generator_seed(0) == 0
    assert generator_seed(2**63 - 1) == 2**63 - 1  # values already in range: the same draws as before
    assert generator_seed(2**63) == 0
    assert generator_seed(-1) == 2**63 - 1
    with pytest.raises(BadInputError, match="derived seed"):
        generator_seed(1.5)  # type: ignore[arg-type]


def test_every_32_bit_seed_gives_a_valid_derived_seed() -> None:
    """The derivations the studies apply (lola's ``seed * 100_000 + i``, then ``* 1_000_003 + n``), over the
    whole 32-bit range: the bounds of the range, and a dense sweep, are accepted by torch and NumPy."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from etude.runtime.seeding import generator_seed

    def check(seed: int) -> None:
        for value in (seed, seed * 100_000 + 255, (seed * 100_000 + 255) * 1_000_003 + 4096, seed * 1000 + 999):
            derived = generator_seed(value)
            assert 0 <= derived < 2**63
            torch.Generator().manual_seed(derived)
            np.random.default_rng(derived)

    for seed in (0, 1, 184_467_000, 2**31 - 1, 2**32 - 2, MAX_SEED):
        check(seed)
    settings(max_examples=200, derandomize=True, deadline=None)(given(st.integers(0, MAX_SEED))(check))()


def test_lola_coin_and_q_learning_samplers_accept_the_largest_seed() -> None:
    """The two lola samplers that crashed at seed 184,467,000 and 2**32 - 1 ('Overflow when unpacking long long')."""
    from etude.games.coin_training import train_coin
    from etude.games.matrix import ipd
    from etude.games.qlearning import train_against_q

    for seed in (184_467_000, MAX_SEED):
        seeds = [seed * 100_000 + i for i in range(2)]
        out = train_coin("naive", "naive", seeds=seeds, steps=1, episodes=2, horizon=3, grid=3)
        assert torch.isfinite(out.theta).all()
        history = train_against_q(ipd(), "nl-q", "naive", rounds=1, seeds=seeds, horizon=3)
        assert torch.isfinite(history.rewards).all()
