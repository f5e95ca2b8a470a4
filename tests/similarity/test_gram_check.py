"""The check read off the raw Gram diagonal (`checked_by_gram`) against the one-pass min/max check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from etude.similarity import cka as cka_module
from etude.similarity import linear_cka
from etude.similarity._validation import check_matrix
from etude.similarity.gram import checked_by_gram, gram


def _data() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((300, 6))


def _accepted() -> dict[str, np.ndarray]:
    x = _data()
    zero = x.copy()
    zero[:, 3] = 0.0  # an all-zero neuron: dead, its Gram row exactly 0
    tiny_live = x.copy()
    tiny_live[:, 1] = np.where(np.arange(300) % 2, 1e-300, -1e-300)  # squares underflow, mean exactly 0: live
    return {
        "centred": x - x.mean(0),
        "relu": np.maximum(x, 0.0),
        "zero": zero,
        "tiny_live": tiny_live,
        "large": x * 2.0**50,
        "small": x * 2.0**-50,
    }


def _refused() -> dict[str, np.ndarray]:
    x = _data()
    nan, inf = x.copy(), x.copy()
    nan[5, 2], inf[7, 4] = np.nan, -np.inf
    dead = x.copy()
    dead[:, 2] = 0.1  # constant, not zero: min/max decides it
    tiny_dead = x.copy()
    tiny_dead[:, 2] = 1e-300
    step = np.hstack([x, np.ones((300, 1))])
    step[0, -1] = -1.0  # mean^2 >> variance, though the first rows look spread
    return {
        "nan": nan,
        "inf": inf,
        "offset": x + 1e7,
        "dead": dead,
        "tiny_dead": tiny_dead,
        "step": step,
        "tiny": x * 1e-160,
        "huge": x * 1e160,
        "above_2**64": x * 2.0**66,
        "float32": x.astype(np.float32),
    }


@pytest.mark.parametrize("case", list(_accepted()))
def test_gram_check_equals_the_min_max_check(case: str) -> None:
    x = _accepted()[case]
    fast, slow = checked_by_gram(torch.from_numpy(x)), check_matrix(x, "x")
    assert fast is not None, case
    assert fast.exponent == slow.exponent == 0
    assert fast.data.data_ptr() == slow.data.data_ptr()  # the input itself, no copy
    assert torch.equal(fast.alive, slow.alive) and fast.all_alive == slow.all_alive
    scale = float(np.abs(x).max())
    assert torch.allclose(fast.mean, slow.mean, rtol=1e-14, atol=1e-14 * scale)  # a gemv's sum against NumPy's
    reference = gram(slow)
    assert torch.allclose(gram(fast), reference, rtol=0, atol=1e-12 * float(reference.abs().max()))
    assert fast.cache["folded"] is slow.cache["folded"] is True
    if case == "zero":
        assert not bool(fast.alive[3]) and not gram(fast)[3].any()


@pytest.mark.parametrize("case", list(_refused()))
def test_gram_check_leaves_the_other_cases_to_the_min_max_check(case: str) -> None:
    assert checked_by_gram(torch.from_numpy(_refused()[case])) is None


def test_linear_cka_takes_the_gram_check_and_equals_the_general_path(monkeypatch) -> None:
    y = np.random.default_rng(1).standard_normal((300, 5))
    calls = []
    original = cka_module._checked_by_grams

    def spy(*args):
        calls.append(original(*args))
        return calls[-1]

    monkeypatch.setattr(cka_module, "_checked_by_grams", spy)
    for case, x in {**_accepted(), **_refused()}.items():
        if case in ("nan", "inf"):
            continue
        fast = [linear_cka(x, y), linear_cka(x, y, debiased=True), linear_cka(y, x), linear_cka(x, y + 2.0)]
        assert (calls[0] is not None) == (case in _accepted()), case
        if case in _accepted():
            assert calls[0][1] is not None and calls[3][1] is None  # one joint syrk; y + 2 is centred explicitly
        calls.clear()
        monkeypatch.setattr(cka_module, "_checked_by_grams", lambda *args: None)
        general = [linear_cka(x, y), linear_cka(x, y, debiased=True), linear_cka(y, x), linear_cka(x, y + 2.0)]
        monkeypatch.setattr(cka_module, "_checked_by_grams", spy)
        assert fast == pytest.approx(general, rel=1e-12, abs=1e-15), case
