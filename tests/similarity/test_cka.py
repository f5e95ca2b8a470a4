"""Linear CKA and MinibatchCKA: Gram-matrix oracles, invariances, streaming equals one pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.similarity.similarity_reference import make_layers, reference_cka, reference_cka_debiased

from etude.errors import BadInputError
from etude.similarity import ConstantInputWarning, MinibatchCKA, linear_cka

SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("widths", [(12, 16), (150, 90)])  # feature route and (n < p) Gram route
def test_matches_the_gram_matrix_definitions(seed, widths):
    x, y = make_layers(seed, n=120, widths=widths)
    assert linear_cka(x, y) == pytest.approx(reference_cka(x, y), abs=1e-12)
    assert linear_cka(x, y, debiased=True) == pytest.approx(reference_cka_debiased(x, y), abs=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_invariances_and_identity(seed, debiased):
    x, y = make_layers(seed)
    rng = np.random.default_rng(seed)
    rot, _ = np.linalg.qr(rng.standard_normal((x.shape[1], x.shape[1])))
    base = linear_cka(x, y, debiased=debiased)
    assert linear_cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    for xt, yt in ((x @ rot, y), (5.0 * x, 0.1 * y), (x + 100.0, y - 3.0), (x[:, ::-1], y)):
        assert linear_cka(xt, yt, debiased=debiased) == pytest.approx(base, abs=1e-10)
    mixed = x @ (np.eye(x.shape[1]) + np.diag(np.arange(x.shape[1], dtype=float)))
    assert abs(linear_cka(mixed, y, debiased=debiased) - base) > 1e-3  # not invariant to any invertible map


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("batch", [1, 7, 64, 400])
def test_minibatch_equals_one_pass(batch, debiased):
    x, y = make_layers(3, n=400)
    x = x + 1e3  # a large offset: the shifted accumulators must not lose the small centred parts
    cka = MinibatchCKA(debiased=debiased)
    for i in range(0, len(x), batch):
        cka.update(x[i:i + batch], torch.from_numpy(y[i:i + batch]))
    assert cka.n == 400
    assert cka.value() == pytest.approx(linear_cka(x, y, debiased=debiased), abs=1e-10)


def test_minibatch_value_can_be_read_midway_and_reset():
    x, y = make_layers(4, n=200)
    cka = MinibatchCKA()
    cka.update(x[:100], y[:100])
    assert cka.value() == pytest.approx(linear_cka(x[:100], y[:100]), abs=1e-12)
    cka.update(x[100:], y[100:])
    assert cka.value() == pytest.approx(linear_cka(x, y), abs=1e-12)
    cka.reset()
    assert cka.n == 0
    cka.update(y, x)
    assert cka.value() == pytest.approx(linear_cka(x, y), abs=1e-12)  # symmetric


def test_independent_gaussians_give_the_known_small_values():
    # biased: E||X^T Y||^2 = (n-1) p q and E||X^T X||^2 ≈ (n-1) p (n + p), so CKA ≈ sqrt(pq/((n+p)(n+q)));
    # debiased: the numerator is an unbiased estimate of 0
    n, p, q = 500, 10, 20
    biased, debiased = [], []
    for seed in range(10):
        rng = np.random.default_rng(200 + seed)
        x, y = rng.standard_normal((n, p)), rng.standard_normal((n, q))
        biased.append(linear_cka(x, y))
        debiased.append(linear_cka(x, y, debiased=True))
    assert np.mean(biased) == pytest.approx(np.sqrt(p * q / ((n + p) * (n + q))), rel=0.1)
    assert abs(np.mean(debiased)) < 0.005 and np.std(debiased) < 0.01


def test_float32_within_1e5_and_constant_side_gives_zero():
    x, y = make_layers(5, n=2000, widths=(16, 24))
    assert abs(linear_cka(x, y, dtype="float32") - linear_cka(x, y)) < 1e-5
    assert abs(linear_cka(x, y, True, dtype="float32") - linear_cka(x, y, True)) < 1e-5
    with pytest.warns(ConstantInputWarning, match="x has no variance") as caught:
        assert linear_cka(np.ones((50, 3)), y[:50]) == 0.0
    assert caught[0].filename == __file__  # the warning points at the caller's line


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda x, y: linear_cka(x, y[:10]), ["same number of datapoints"]),
        (lambda x, y: linear_cka(x[:3], y[:3], debiased=True), ["debiased", "4 datapoints", "n=3"]),
        (lambda x, y: linear_cka(x, y, debiased="yes"), ["debiased", "'yes'"]),
        (lambda x, y: MinibatchCKA().update(x[:5], y[:5]).update(x[:5, :3], y[:5]), ["x", "12 neurons", "(5, 3)"]),
        (lambda x, y: MinibatchCKA(debiased=True).update(x[:3], y[:3]).value(), ["4 datapoints", "got 3"]),
        (lambda x, y: MinibatchCKA().update(x[:5], y[:5]).update(x[:5], y[:4]), ["same number of datapoints"]),
    ],
)
def test_bad_input(call, words):
    x, y = make_layers(0)
    with pytest.raises(BadInputError) as info:
        call(x, y)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
