"""pairwise: every entry equals the one-pair function, and each representation is factored once."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from tests.similarity.similarity_reference import make_layers

from etude.errors import BadInputError
from etude.similarity import SmallSampleWarning, linear_cka, mean_cca, pairwise, pwcca, svcca

pairwise_module = importlib.import_module("etude.similarity.pairwise")  # the attribute is the function

ONE_PAIR = {
    "cca": lambda a, b: mean_cca(a, b, threshold=0.98),
    "svcca": lambda a, b: svcca(a, b, keep=0.95),
    "pwcca": lambda a, b: pwcca(a, b, 1e-4, variant="paper"),
    "cka": lambda a, b: linear_cka(a, b, debiased=True),
}
OPTIONS = dict(threshold=0.98, keep=0.95, epsilon=1e-4, variant="paper", debiased=True)


@pytest.mark.parametrize("metric", list(ONE_PAIR))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entries_equal_the_one_pair_functions(metric, seed):
    reps = make_layers(seed, n=300, widths=(10, 14, 8, 12))
    options = {k: v for k, v in OPTIONS.items() if k != "epsilon" or metric == "pwcca"}
    matrix = pairwise(reps, metric, **options)
    assert matrix.shape == (4, 4) and matrix.dtype == np.float64
    for i, a in enumerate(reps):
        for j, b in enumerate(reps):
            assert matrix[i, j] == pytest.approx(ONE_PAIR[metric](a, b), abs=1e-10), (i, j)
    if metric != "pwcca":
        assert np.allclose(matrix, matrix.T, atol=1e-12)
    if metric != "pwcca":  # epsilon > 0 shrinks PWCCA's self-similarity below 1
        assert np.allclose(np.diag(matrix), 1.0, atol=1e-9)


def test_pwcca_is_not_symmetric_and_defaults_match():
    reps = make_layers(3, n=300, widths=(10, 14, 8))
    matrix = pairwise(reps)
    assert matrix[0, 1] == pytest.approx(pwcca(reps[0], reps[1]), abs=1e-10)
    assert matrix[1, 0] == pytest.approx(pwcca(reps[1], reps[0]), abs=1e-10)
    assert abs(matrix[0, 1] - matrix[1, 0]) > 1e-4


def test_each_representation_is_whitened_once(monkeypatch):
    calls = []
    real = pairwise_module.whiten

    def counting(x, *args, **kwargs):
        calls.append(x.shape)
        return real(x, *args, **kwargs)

    monkeypatch.setattr(pairwise_module, "whiten", counting)
    reps = make_layers(4, n=200, widths=(6, 7, 8, 9, 10))
    pairwise(reps, "pwcca")
    assert len(calls) == 5


def test_torch_inputs_and_a_single_representation():
    reps = [torch.from_numpy(r) for r in make_layers(5, n=200, widths=(6, 9))]
    assert np.allclose(pairwise(reps, "cka"), pairwise([r.numpy() for r in reps], "cka"), atol=1e-12)
    assert pairwise(reps[:1], "cca").tolist() == [[pytest.approx(1.0)]]


def test_small_samples_warn():
    reps = make_layers(6, n=40, widths=(10, 6))
    with pytest.warns(SmallSampleWarning, match=r"reps\[0\] has n=40"):
        pairwise(reps, "cca")
    pairwise(reps, "cka")  # CKA needs no n > 5p


@pytest.mark.parametrize(
    ("reps", "kwargs", "words"),
    [
        ([], {}, ["reps", "non-empty list"]),
        (np.zeros((10, 3)), {}, ["reps", "ndarray"]),
        ("make", {"metric": "rsa"}, ["metric", "'rsa'", "'cka'"]),
        ("mismatch", {}, ["reps[1]", "(99, 8)", "(100, 6)"]),
        ("make", {"metric": "svcca", "keep": 1.5}, ["keep", "1.5"]),
        ("make", {"variant": "x"}, ["variant", "'x'"]),
    ],
)
def test_bad_input(reps, kwargs, words):
    if isinstance(reps, str) and reps == "make":
        reps = make_layers(0, n=100, widths=(6, 8))
    elif isinstance(reps, str):
        a, b = make_layers(0, n=100, widths=(6, 8))
        reps = [a, b[:99]]
    with pytest.raises(BadInputError) as info:
        pairwise(reps, **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
