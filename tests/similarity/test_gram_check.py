"""The checks read off Gram diagonals (raw: `checked_by_gram`; shifted joint: `centred_joint_gram`) against the one-pass min/max check."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from etude.similarity import cka as cka_module
from etude.similarity import linear_cka
from etude.similarity._validation import check_matrix
from etude.similarity.gram import centred_joint_gram, checked_by_gram, gram, sample_median


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


def _joint_accepted() -> dict[str, np.ndarray]:
    """What the shifted joint syrk of a small pair decides: `_accepted`, plus offsets and constant columns,
    which the shift by a column entry (`sample_median`) brings within reach of folded centring."""
    x, refused = _data(), _refused()
    extra = {k: refused[k] for k in ("step", "offset", "dead", "tiny_dead")}
    accepted = {k: v for k, v in _accepted().items() if k != "tiny_live"}
    return {**accepted, **extra, "offset_2": x + 2.0}


def _joint_refused() -> dict[str, np.ndarray]:
    """Left to `check_matrix`: non-finite values, out-of-range scales, and squares lost to underflow
    (tiny_live's +-1e-300, shifted by +1e-300, leaves x' at 0 and -2e-300 with sum of squares 0)."""
    refused = {k: v for k, v in _refused().items() if k in ("nan", "inf", "tiny", "huge", "above_2**64")}
    return {**refused, "tiny_live": _accepted()["tiny_live"]}


def _explicit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[X_c Y_c]^T [X_c Y_c] from `check_matrix`'s dead neurons and explicit centring (the reference)."""
    cx, cy = check_matrix(x, "x"), check_matrix(y, "y")
    assert cx.exponent == cy.exponent == 0
    joint = np.hstack([cx.centred().numpy(), cy.centred().numpy()])
    return joint.T @ joint


@pytest.mark.parametrize("case", list(_joint_accepted()))
def test_centred_joint_gram_equals_explicit_centring(case: str) -> None:
    x = _joint_accepted()[case]
    y = np.random.default_rng(1).standard_normal((300, 5)) + 3.0
    result = centred_joint_gram(x, y)
    assert result is not None, case
    upper, shifted, mean = result
    reference = _explicit(x, y)
    assert not np.tril(upper, -1).any()  # the upper triangle only; the strict lower one is 0
    scale = np.sqrt(np.outer(reference.diagonal(), reference.diagonal())).max()
    assert np.abs(np.triu(upper) - np.triu(reference)).max() <= 1e-12 * scale, case
    slow = check_matrix(x, "x")
    centred, p = shifted - mean, x.shape[1]
    assert np.allclose(centred[:, :p], slow.centred().numpy(), rtol=0, atol=1e-14 * np.abs(x).max())
    assert np.allclose(centred[:, p:], y - y.mean(0), rtol=0, atol=1e-14 * np.abs(y).max())
    dead = np.flatnonzero(~slow.alive.numpy())
    assert not upper[dead].any() and not upper[:, dead].any()  # dead neurons: exactly 0, as centring gives
    assert (case in ("zero", "dead", "tiny_dead")) == (dead.size > 0)


@pytest.mark.parametrize("case", list(_joint_refused()))
def test_centred_joint_gram_leaves_the_other_cases_to_the_min_max_check(case: str) -> None:
    y = np.random.default_rng(1).standard_normal((300, 5))
    assert centred_joint_gram(_joint_refused()[case], y) is None
    assert centred_joint_gram(y, _joint_refused()[case]) is None


def test_sample_median_is_an_entry_near_the_centre() -> None:
    x = np.random.default_rng(3).standard_normal((2_000, 40)) * 3.0 + 7.0
    x[:, 5] = 0.1
    shift = sample_median(x)
    assert all(np.isin(shift[j], x[:, j]) for j in range(40))
    assert shift[5] == 0.1 and np.abs(shift - x.mean(0)).max() < 3.0  # 1 standard deviation (3.0)
    assert sample_median(x[:3]).shape == (40,)  # fewer rows than the sample


def test_linear_cka_takes_the_joint_gram_and_equals_the_general_path(monkeypatch) -> None:
    y = np.random.default_rng(1).standard_normal((300, 5))
    calls = []
    original = cka_module.centred_joint_gram

    def spy(*args):
        calls.append(original(*args))
        return calls[-1]

    monkeypatch.setattr(cka_module, "centred_joint_gram", spy)
    for case, x in {**_joint_accepted(), **_joint_refused()}.items():
        if case in ("nan", "inf"):
            continue
        fast = [linear_cka(x, y), linear_cka(x, y, debiased=True), linear_cka(y, x), linear_cka(x, y + 2.0)]
        assert len(calls) == 4 and all((c is not None) == (case in _joint_accepted()) for c in calls), case
        calls.clear()
        monkeypatch.setattr(cka_module, "_joint_moments", lambda *args: None)
        monkeypatch.setattr(cka_module, "_checked_by_grams", lambda *args: None)
        general = [linear_cka(x, y), linear_cka(x, y, debiased=True), linear_cka(y, x), linear_cka(x, y + 2.0)]
        monkeypatch.undo()
        monkeypatch.setattr(cka_module, "centred_joint_gram", spy)
        assert fast == pytest.approx(general, rel=1e-12, abs=1e-15), case


def test_linear_cka_beyond_the_joint_limit_folds_raw_grams_and_shifts_offsets(monkeypatch) -> None:
    x, y = _data(), np.random.default_rng(1).standard_normal((300, 5))
    expected = [linear_cka(x, y), linear_cka(x + 1e7, y), linear_cka(x + 1e7, y, debiased=True)]
    monkeypatch.setattr(cka_module, "JOINT_LIMIT", 0)
    grams, joints = [], []
    original_grams, original_joint = cka_module._checked_by_grams, cka_module.centred_joint_gram
    monkeypatch.setattr(cka_module, "_checked_by_grams", lambda *a: grams.append(original_grams(*a)) or grams[-1])
    monkeypatch.setattr(cka_module, "centred_joint_gram", lambda *a: joints.append(original_joint(*a)) or joints[-1])
    large = [linear_cka(x, y), linear_cka(x + 1e7, y), linear_cka(x + 1e7, y, debiased=True)]
    assert grams[0] is not None and len(joints) == 2  # no offset: raw Grams, no copy; offsets: the joint syrk
    assert grams[1] is None and all(j is not None for j in joints)
    assert large == pytest.approx(expected, rel=1e-12)


@st.composite
def _layer(draw: st.DrawFn, n: int) -> np.ndarray:
    """(n, p) Gaussian columns at a power-of-two scale, each with an offset, some constant or all zero."""
    p = draw(st.integers(1, 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n, p)) * 2.0 ** draw(st.integers(-40, 40))
    offsets = draw(st.lists(st.sampled_from([0.0, 1e-3, -2.0, 3e4, -1e7]), min_size=p, max_size=p))
    x += np.asarray(offsets) * np.abs(x).max()
    for j in draw(st.lists(st.integers(0, p - 1), max_size=2)):
        x[:, j] = draw(st.sampled_from([0.0, 0.1, -3.5e5]))
    if draw(st.booleans()):
        x = x[np.argsort(x[:, 0], kind="stable")]  # sorted rows: the sample median sees every part of the data
    return x


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.integers(4, 70).flatmap(lambda n: st.tuples(_layer(n), _layer(n))), st.booleans())
def test_fast_linear_cka_equals_the_general_path_on_random_layers(pair, debiased) -> None:
    x, y = pair
    with warnings.catch_warnings(record=True) as fast_warnings:
        warnings.simplefilter("always")
        fast = linear_cka(x, y, debiased=debiased)
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as general_warnings:
        warnings.simplefilter("always")
        patch.setattr(cka_module, "_fast_inputs", lambda *args: None)
        general = linear_cka(x, y, debiased=debiased)
    assert [str(w.message) for w in fast_warnings] == [str(w.message) for w in general_warnings]
    assert fast == pytest.approx(general, rel=1e-9, abs=1e-12)
