"""CCA, mean CCA, SVCCA, PWCCA: closed forms, invariances, oracles, robustness, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.similarity.similarity_reference import (make_layers, reference_cca, reference_mean, reference_pwcca,
                                  reference_svcca)

from etude.errors import BadInputError
from etude.similarity import SmallSampleWarning, cca, mean_cca, pwcca, svcca
from etude.similarity.cca import correlations
from etude.similarity.whitening import whiten

SEEDS = [0, 1, 2]


def _orthogonal(rng: np.random.Generator, p: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((p, p)))
    return q * np.sign(np.diag(r))


def _canonical_pair(rho: list[float], n: int = 300, seed: int = 0, scales=None):
    """x, y whose sample canonical correlations are exactly `rho` (x = U diag(scales), y_i = rho_i u_i + ...)."""
    rng = np.random.default_rng(seed)
    k = len(rho)
    basis = rng.standard_normal((n, 2 * k))
    ones = np.ones((n, 1)) / np.sqrt(n)
    basis = basis - ones @ (ones.T @ basis)  # centred columns
    basis, _ = np.linalg.qr(basis)
    u, w = basis[:, :k], basis[:, k:]
    rho = np.asarray(rho)
    scales = np.ones(k) if scales is None else np.asarray(scales)
    return u * scales, u * rho + w * np.sqrt(1 - rho**2)


@pytest.mark.parametrize("seed", SEEDS)
def test_identical_inputs_give_one(seed):
    x, _ = make_layers(seed)
    assert np.allclose(cca(x, x).rho, 1.0, atol=1e-10)
    for value in (mean_cca(x, x), svcca(x, x), pwcca(x, x), pwcca(x, x, variant="paper"), mean_cca(x, x, method="qr")):
        assert value == pytest.approx(1.0, abs=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_closed_form_canonical_correlations(seed):
    rho = [0.95, 0.7, 0.4, 0.1]
    x, y = _canonical_pair(rho, seed=seed)
    rng = np.random.default_rng(seed + 10)
    mix_x, mix_y = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))  # invertible maps do not change rho
    for method in ("cov", "qr"):
        assert np.allclose(cca(x @ mix_x, y @ mix_y + 5.0, method=method).rho, rho, atol=1e-10)


@pytest.mark.parametrize("variant", ["reference", "paper"])
def test_pwcca_closed_form_weights_are_neuron_scales(variant):
    # x_j = c_j u_j with orthonormal u: h_i = u_i, alpha_i ∝ |<u_i, c_i u_i>| = c_i
    rho, scales = np.array([0.9, 0.6, 0.3]), np.array([3.0, 1.0, 0.5])
    x, y = _canonical_pair(list(rho), scales=scales)
    assert pwcca(x, y, variant=variant) == pytest.approx(float(scales @ rho / scales.sum()), abs=1e-10)
    # uniform scales: the plain mean
    x1, y1 = _canonical_pair(list(rho))
    assert pwcca(x1, y1, variant=variant) == pytest.approx(rho.mean(), abs=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_invariances(seed):
    x, y = make_layers(seed)
    rng = np.random.default_rng(seed)
    p, q = x.shape[1], y.shape[1]
    rot_x, rot_y = _orthogonal(rng, p), _orthogonal(rng, q)
    perm = rng.permutation(p)
    base = mean_cca(x, y)
    assert mean_cca(x @ rng.standard_normal((p, p)), y @ rng.standard_normal((q, q))) == pytest.approx(base, abs=1e-9)
    base_sv, base_pw = svcca(x, y), pwcca(x, y)
    for xt, yt in ((x @ rot_x, y @ rot_y), (3.0 * x, 0.2 * y), (x[:, perm], y), (x + 7.0, y - 2.0)):
        assert svcca(xt, yt) == pytest.approx(base_sv, abs=1e-9)
        assert mean_cca(xt, yt) == pytest.approx(base, abs=1e-9)
    # PWCCA weights come from x's neurons: y may change by any invertible map, x by permutation,
    # isotropic scaling and translation (the reference's uncentred version is not translation invariant)
    for xt, yt in ((x, y @ rng.standard_normal((q, q))), (x[:, perm], y), (4.0 * x, y), (x + 3.0, y + 1.0)):
        for variant in ("reference", "paper"):
            assert pwcca(xt, yt, variant=variant) == pytest.approx(pwcca(x, y, variant=variant), abs=1e-9)
    assert abs(pwcca(x @ rng.standard_normal((p, p)), y) - base_pw) > 1e-4  # not invariant to mixing x


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("epsilon", [0.0, 1e-3])
def test_agrees_with_the_reference_formulas(seed, epsilon):
    x, y = make_layers(seed, widths=(12, 16))
    _, rho, _, _ = reference_cca(x, y, epsilon)
    result = cca(x, y, epsilon)
    assert np.allclose(result.rho, rho, atol=1e-9)
    assert mean_cca(x, y, epsilon, threshold=0.98) == pytest.approx(reference_mean(rho, 0.98), abs=1e-9)
    assert pwcca(x, y, epsilon) == pytest.approx(reference_pwcca(x, y, epsilon), abs=1e-9)
    assert pwcca(y, x, epsilon) == pytest.approx(reference_pwcca(y, x, epsilon), abs=1e-9)  # x wider than y
    if epsilon == 0:
        assert svcca(x, y) == pytest.approx(reference_svcca(x, y), abs=1e-9)
        assert svcca(x, y, keep=0.9) == pytest.approx(reference_svcca(x, y, keep=0.9), abs=1e-9)


def test_paper_and_reference_variants_differ_on_correlated_neurons():
    x, y = make_layers(3)
    a, b = pwcca(x, y, variant="reference"), pwcca(x, y, variant="paper")
    assert 0 < a < 1 and 0 < b < 1 and abs(a - b) > 1e-4


def test_agrees_with_scikit_learn_cca():
    from sklearn.cross_decomposition import CCA

    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 6))
    y = x[:, :4] @ rng.standard_normal((4, 5)) + rng.standard_normal((400, 5))
    result = cca(x, y)
    model = CCA(n_components=3, scale=False, max_iter=20000, tol=1e-14).fit(x, y)
    xs, ys = model.transform(x, y)
    h = (x - x.mean(0)) @ result.x_weights
    for i in range(3):
        assert np.corrcoef(xs[:, i], ys[:, i])[0, 1] == pytest.approx(result.rho[i], abs=1e-8)
        assert abs(np.corrcoef(xs[:, i], h[:, i])[0, 1]) == pytest.approx(1.0, abs=1e-8)  # same variable up to sign


@pytest.mark.parametrize("method", ["cov", "qr"])
def test_canonical_weights_whiten_and_pair_up(method):
    x, y = make_layers(4)
    n = len(x)
    result = cca(x, y, method=method)
    h = (x - x.mean(0)) @ result.x_weights
    g = (y - y.mean(0)) @ result.y_weights
    r = len(result.rho)
    assert np.allclose(h.T @ h / (n - 1), np.eye(r), atol=1e-9)
    assert np.allclose(g.T @ g / (n - 1), np.eye(r), atol=1e-9)
    assert np.allclose(h.T @ g / (n - 1), np.diag(result.rho), atol=1e-9)
    columns = result.x_weights[np.abs(result.x_weights).argmax(0), np.arange(r)]
    assert (columns > 0).all()  # sign convention: the largest entry of each x column is positive
    assert np.all(np.diff(result.rho) <= 1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_qr_and_covariance_routes_agree(seed):
    x, y = make_layers(seed, widths=(10, 14))
    assert np.allclose(cca(x, y, method="qr").rho, cca(x, y, method="cov").rho, atol=1e-10)
    dup = np.column_stack([x, x[:, :3], 2 * x[:, 4]])  # rank-deficient: the QR route falls back to the SVD
    qr, cov = cca(dup, y, method="qr"), cca(dup, y, method="cov")
    assert len(qr.rho) == len(cov.rho) == 10
    assert np.allclose(qr.rho, cov.rho, atol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
def test_cholesky_whitening_is_taken_only_when_certified_and_agrees(seed):
    x, y = make_layers(seed, widths=(10, 14))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    fast_x, fast_y = whiten(tx, eigenbasis=False), whiten(ty, eigenbasis=False)
    assert fast_x.eigvals is None and fast_y.eigvals is None  # well conditioned: Cholesky
    assert torch.allclose(correlations(fast_x, fast_y), correlations(whiten(tx), whiten(ty)), atol=1e-12)
    basis = fast_x.basis()
    assert torch.allclose(basis.T @ basis, torch.eye(10, dtype=basis.dtype), atol=1e-12)
    for bad in (torch.cat([tx, tx[:, :2]], 1), torch.cat([tx, 1e-9 * tx[:, :1] + tx[:, 1:2]], 1)):
        assert whiten(bad, eigenbasis=False).eigvals is not None  # singular or cond > 1/(10 p eps): eigh


@pytest.mark.parametrize("seed", SEEDS)
def test_float32_is_within_1e5_of_float64(seed):
    x, y = make_layers(seed, n=2000, widths=(16, 24))
    for f in (mean_cca, svcca, pwcca):
        assert abs(f(x, y, dtype="float32") - f(x, y)) < 1e-5, f.__name__
    assert abs(pwcca(torch.from_numpy(x).float(), torch.from_numpy(y).float(), dtype="float32") - pwcca(x, y)) < 1e-5


def test_degenerate_layers_give_finite_numbers_where_the_reference_does_not():
    x, y = make_layers(7, n=300, widths=(12, 16))
    dead = np.column_stack([x, np.zeros(300), np.full(300, 0.3)])
    dup = np.column_stack([x, x, x[:, :2] @ np.ones((2, 3))])
    base = cca(x, y).rho
    for z in (dead, dup):
        result = cca(z, y)
        assert np.allclose(result.rho, base, atol=1e-8)  # dead and duplicated neurons change nothing
        for value in (mean_cca(z, y), pwcca(z, y), pwcca(y, z), pwcca(z, y, variant="paper"), svcca(z, y)):
            assert np.isfinite(value) and 0 <= value <= 1
    assert cca(dead, y).x_kept.tolist() == list(range(12))
    assert pwcca(dead, y) == pytest.approx(pwcca(x, y), abs=1e-9)
    try:  # the reference's pinv-then-sqrt on the same inputs
        with np.errstate(all="ignore"):
            _, rho_ref, _, _ = reference_cca(dup, y)
        broken = bool(np.isnan(rho_ref).any()) or len(rho_ref) != len(base)
    except np.linalg.LinAlgError:  # "SVD did not converge" (NaN from the square root of a negative eigenvalue)
        broken = True
    assert broken


def test_n_below_p_warns_and_stays_finite():
    x, y = make_layers(8, n=40, widths=(60, 30))
    with pytest.warns(SmallSampleWarning) as record:
        result = cca(x, y)
    messages = [str(w.message) for w in record]
    assert any("x has n=40 datapoints for p=60" in m for m in messages)
    assert any("y has n=40 datapoints for p=30" in m for m in messages)
    assert all(w.filename == __file__ for w in record)  # points at the caller, not at etude's internals
    assert len(result.rho) == 30 and np.allclose(result.rho, 1.0, atol=1e-6)  # 39-dim centred space
    with pytest.warns(SmallSampleWarning):
        assert np.isfinite(pwcca(x, y))


def test_warning_threshold_is_5p():
    x, y = make_layers(9, n=60, widths=(12, 12))
    mean_cca(x, y)  # n = 5p: no warning (EtudeWarning is an error in this suite)
    with pytest.warns(SmallSampleWarning):
        mean_cca(x[:59], y[:59])
    with pytest.warns(SmallSampleWarning, match="after SVD reduction"):
        svcca(x[:59], y[:59], keep=12)
    svcca(x[:20], y[:20], keep=4)  # SVCCA warns on the kept directions, not the neurons


def test_independent_gaussians_give_the_known_small_correlations():
    # for independent data, E[sum_i rho_i^2] = p q / (n - 1) exactly (random subspaces of the centred space)
    n, p, q = 200, 8, 10
    totals = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        totals.append(np.sum(cca(rng.standard_normal((n, p)), rng.standard_normal((n, q))).rho ** 2))
    assert np.mean(totals) == pytest.approx(p * q / (n - 1), rel=0.1)


def test_threshold_mean_follows_the_reference_rule():
    x, y = _canonical_pair([0.9, 0.5, 0.3, 0.2])  # sum 1.9
    result = cca(x, y)
    assert result.mean() == pytest.approx(0.475, abs=1e-9)
    assert result.mean(0.4) == pytest.approx(0.9, abs=1e-9)  # 0.9 alone is 47% of the sum
    assert result.mean(0.5) == pytest.approx(0.7, abs=1e-9)  # 0.9 + 0.5 is 74%
    assert result.mean(0.75) == pytest.approx(1.7 / 3, abs=1e-9)
    assert result.mean(1.0) == pytest.approx(0.475, abs=1e-9)
    assert mean_cca(x, y, threshold=0.5) == pytest.approx(0.7, abs=1e-9)


def test_epsilon_removes_low_variance_neurons_and_keeps_indices():
    x, y = make_layers(10, widths=(6, 8))
    tiny = np.column_stack([x[:, :3], 1e-4 * x[:, 3], x[:, 4:]])
    result = cca(tiny, y, epsilon=1e-3)
    assert result.x_kept.tolist() == [0, 1, 2, 4, 5]
    assert (result.x_weights[3] == 0).all()
    assert cca(tiny, y).x_kept.tolist() == list(range(6))


def test_torch_and_numpy_inputs_agree_and_are_not_modified():
    x, y = make_layers(11)
    x0 = x.copy()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    assert pwcca(tx, ty) == pytest.approx(pwcca(x, y), abs=1e-12)
    assert pwcca(x, ty) == pytest.approx(pwcca(x, y), abs=1e-12)
    assert np.array_equal(x, x0)
    assert isinstance(cca(tx, ty).rho, np.ndarray)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda x, y: cca(x[:, 0], y), ["x", "2-D", "(400,)"]),
        (lambda x, y: cca(x, y[:-1]), ["same number of datapoints", "(400, 12)", "(399, 16)"]),
        (lambda x, y: cca(x, [[1.0]]), ["y", "NumPy array or a torch tensor", "list"]),
        (lambda x, y: cca(np.where(x > 0.9, np.nan, x), y), ["x", "NaN"]),
        (lambda x, y: cca(x.astype(complex), y), ["x", "real numbers"]),
        (lambda x, y: cca(x.reshape(400, 3, 2, 2), y), ["x", "2-D", "flatten_conv"]),
        (lambda x, y: cca(x, y, method="svd"), ["method", "'svd'", "'qr'"]),
        (lambda x, y: cca(x, y, epsilon=-1.0), ["epsilon", "-1.0"]),
        (lambda x, y: cca(x, y, 1e-3, method="qr"), ["epsilon", "method='cov'"]),
        (lambda x, y: cca(x, y, dtype="float16"), ["dtype", "float16"]),
        (lambda x, y: mean_cca(x, y, threshold=1.5), ["threshold", "1.5"]),
        (lambda x, y: svcca(x, y, keep=0), ["keep", "0"]),
        (lambda x, y: svcca(x, y, keep=True), ["keep", "True"]),
        (lambda x, y: pwcca(x, y, variant="google"), ["variant", "'google'", "'paper'"]),
        (lambda x, y: pwcca(x[:1], y[:1]), ["x", "at least 2 datapoints"]),
    ],
)
def test_bad_input_names_the_argument(call, words):
    x, y = make_layers(0)
    with pytest.raises(BadInputError) as info:
        call(x, y)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
