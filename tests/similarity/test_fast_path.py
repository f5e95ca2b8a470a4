"""The one-pass check, the syrk Gram matrices with folded centring, and multi-metric pairwise against plain references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.similarity.similarity_reference import make_layers

from etude.errors import BadInputError
from etude.similarity import ConstantInputWarning, _validation, linear_cka, mean_cca, pairwise, pwcca, svcca
from etude.similarity._validation import check_matrix
from etude.similarity.gram import cross, gram, syrk


def _centred_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """X_c^T Y_c in float64 from explicitly centred data (the reference)."""
    a, b = a - a.mean(0), b - b.mean(0)
    return a.T @ b


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 7))
    step = np.ones((400, 1))
    step[0] = -1.0  # |mean| < half the range, yet mean^2 >> variance: the diagonal check must refuse to fold
    dead = x.copy()
    dead[:, 2] = 0.1  # a constant neuron whose mean is not exactly 0.1 in floating point
    return {
        "centred": x - x.mean(0),
        "relu": np.maximum(x, 0.0),
        "offset": x + 1e7,
        "step": np.hstack([x, step]),
        "dead": dead,
        "duplicated": np.hstack([x, x[:, :3], 2 * x[:, 4:5]]),
        "tiny": x * 1e-160,
        "huge": (x + 3.0) * 1e160,
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_gram_and_cross_equal_explicitly_centred_products(case: str) -> None:
    x = _cases()[case]
    y = np.random.default_rng(1).standard_normal((400, 5)) + 2.0
    cx, cy = check_matrix(x, "x"), check_matrix(y, "y")
    assert np.array_equal(np.ldexp(cx.data.numpy(), cx.exponent), x)  # exact powers of two
    scale = np.ldexp(1.0, -cx.exponent)
    reference = _centred_product(x * scale, x * scale)
    size = np.abs(reference).max()
    assert np.abs(gram(cx).numpy() - reference).max() <= 1e-12 * size, case
    assert np.array_equal(gram(cx).numpy(), gram(cx).numpy().T)
    ref_cross = _centred_product(x * scale, y * np.ldexp(1.0, -cy.exponent))
    assert np.abs(cross(cx, cy).numpy() - ref_cross).max() <= 1e-12 * np.abs(ref_cross).max(), case
    small = y - y.mean(0) + 0.1  # a folded side beside an explicitly centred one: the rounding of x's mean
    cs = check_matrix(small, "y")  # at its offset's scale, times y's mean, must not enter X_c^T Y_c
    ref_small = _centred_product(x * scale, small)
    assert np.abs(cross(cx, cs).numpy() - ref_small).max() <= 1e-12 * np.abs(ref_small).max(), case
    assert np.abs(cross(cs, cx).numpy() - ref_small.T).max() <= 1e-12 * np.abs(ref_small).max(), case
    if case in ("offset", "step"):
        assert cx.cache["folded"] is False  # large offsets are centred explicitly
    if case in ("centred", "relu", "tiny"):
        assert cx.cache["folded"] is True and "centred" not in cx.cache  # no centred copy was made
    if case == "dead":
        assert not gram(cx).numpy()[2].any() and not gram(cx).numpy()[:, 2].any()  # exactly 0, as centring gives


def test_syrk_is_the_full_symmetric_product() -> None:
    a = torch.from_numpy(np.random.default_rng(2).standard_normal((50, 6)))
    assert torch.allclose(syrk(a), a.T @ a, rtol=1e-13, atol=1e-13)
    assert torch.allclose(syrk(a.float()), (a.T @ a).float(), rtol=1e-5, atol=1e-4)
    assert torch.allclose(syrk(a[:, ::2]), a[:, ::2].T @ a[:, ::2], rtol=1e-13)  # non-contiguous input


def test_check_matrix_errors_and_inputs_left_untouched() -> None:
    x, y = make_layers(0, n=200, widths=(6, 8))
    x = np.hstack([x, np.full((200, 1), 0.3)])
    before = x.copy(), y.copy()
    mean_cca(x, y), pwcca(x, y), linear_cka(x, y, debiased=True), svcca(x, y), pairwise([x, y], ("cca", "cka"))
    assert np.array_equal(x, before[0]) and np.array_equal(y, before[1])
    for bad, word in ((np.inf, "NaN or infinite"), (np.nan, "NaN or infinite")):
        z = x.copy()
        z[7, 1] = bad
        with pytest.raises(BadInputError, match=word):
            check_matrix(z, "z")
    checked = check_matrix(x * 1e200, "x", "float32")
    assert checked.data.dtype == torch.float32 and 0.5 <= float(checked.data.abs().max()) <= 1.0


@pytest.mark.parametrize("scale", [1.0, 1e-160, 1e160])
def test_torch_route_equals_numpy_route(monkeypatch, scale: float) -> None:
    """The route GPUs take (torch throughout) gives the CPU route's values, rank-deficient input included."""
    x, y = make_layers(3, n=300, widths=(8, 10))
    dup = np.hstack([x, x[:, :2], np.full((300, 1), 4.0)]) * scale
    y = (y + 5.0) * scale
    metrics = [lambda: mean_cca(dup, y), lambda: pwcca(dup, y), lambda: svcca(dup, y), lambda: linear_cka(dup, y),
               lambda: linear_cka(dup, y, debiased=True), lambda: pairwise([dup, y, x], ("cca", "pwcca", "cka"))]
    expected = [m() for m in metrics]
    monkeypatch.setattr(_validation, "numpy_path", lambda tensor: False)
    for m, value in zip(metrics, expected):
        got = m()
        if isinstance(value, dict):
            for name in value:
                assert np.allclose(got[name], value[name], rtol=1e-10, atol=1e-12), name
        else:
            assert got == pytest.approx(value, rel=1e-10, abs=1e-12)


def test_pairwise_of_several_metrics_equals_one_call_each() -> None:
    reps = make_layers(4, n=300, widths=(6, 9, 7))
    reps.append(np.hstack([reps[0], reps[0][:, :2]]))  # rank-deficient
    reps.append(np.full((300, 3), 1.5))  # constant
    with pytest.warns(ConstantInputWarning):
        together = pairwise(reps, ["cca", "svcca", "pwcca", "cka"], threshold=0.98)
    for metric in ("cca", "svcca", "pwcca", "cka"):
        with pytest.warns(ConstantInputWarning):
            alone = pairwise(reps, metric, threshold=0.98)
        assert np.allclose(together[metric], alone, rtol=1e-10, atol=1e-12), metric
        assert np.all(np.isfinite(together[metric]))
    assert together["cka"][0, 1] == pytest.approx(linear_cka(reps[0], reps[1]), rel=1e-12)
    assert together["pwcca"][3, 0] == pytest.approx(pwcca(reps[3], reps[0]), abs=1e-10)
    with pytest.raises(BadInputError, match="at most once"):
        pairwise(reps, ["cka", "cka"])
    with pytest.raises(BadInputError, match="'rsa'"):
        pairwise(reps, ["cka", "rsa"])


@pytest.mark.parametrize("scale", [1e-42, 1e-30, 1e30])
def test_float32_input_at_the_edges_of_its_range(scale: float) -> None:
    x, y = make_layers(5, n=300, widths=(6, 5))
    x32 = (x * scale).astype(np.float32)  # 1e-42: subnormal float32 entries
    checked = check_matrix(x32, "x")
    assert torch.isfinite(checked.data).all() and 0.5 <= float(checked.data.abs().max()) <= 1.0
    assert np.array_equal(np.ldexp(checked.data.numpy(), checked.exponent), x32.astype(np.float64))
    assert linear_cka(x32, y) == pytest.approx(linear_cka(x32.astype(np.float64), y), rel=1e-12)
