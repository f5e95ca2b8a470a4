"""Scale invariance in floating point, constant sides, NumPy scalar options, and the CLI's names for its files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from etude.cli import main
from etude.errors import BadInputError
from etude.similarity import ConstantInputWarning, cca, linear_cka, mean_cca, pairwise, pwcca, svcca


def _pair(seed: int = 0, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    return x, x @ rng.standard_normal((6, 5)) + 0.7 * rng.standard_normal((n, 5))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("sx", "sy"), [(1e160, 1.0), (1e-160, 1e200), (1e-300, 1e-300), (1e300, 3.0)])
def test_cca_family_and_cka_are_scale_invariant(seed: int, sx: float, sy: float) -> None:
    x, y = _pair(seed)
    for metric in (mean_cca, pwcca, svcca, linear_cka):
        base = metric(x, y)
        assert 0.05 < base < 1.0
        assert metric(x * sx, y * sy) == pytest.approx(base, rel=1e-9, abs=1e-12), metric.__name__
    assert np.allclose(pairwise([x * sx, y * sy], "pwcca"), pairwise([x, y], "pwcca"), rtol=1e-9)


def test_issue_cases() -> None:
    x, y = _pair()
    assert mean_cca(x * 1e160, y) == pytest.approx(mean_cca(x, y), rel=1e-12)  # was 0.0
    assert linear_cka(x * 1e8, y * 1e8, dtype="float32") == pytest.approx(linear_cka(x, y), abs=1e-5)  # was NaN
    assert linear_cka(x * 1e-80, y * 1e-80) == pytest.approx(linear_cka(x, y), rel=1e-12)  # was ZeroDivisionError


def test_cca_weights_follow_the_scale() -> None:
    x, y = _pair()
    base, scaled = cca(x, y), cca(x * 1e100, y * 1e-50)
    assert np.allclose(base.rho, scaled.rho, rtol=1e-10)
    assert np.allclose(scaled.x_weights * 1e100, base.x_weights, rtol=1e-8)
    assert np.allclose(scaled.y_weights * 1e-50, base.y_weights, rtol=1e-8)
    xc = x - x.mean(0)
    assert np.allclose(np.cov((xc * 1e100 @ scaled.x_weights).T), np.eye(base.rho.size), atol=1e-8)


@pytest.mark.parametrize("metric", [mean_cca, pwcca, svcca, linear_cka])
def test_a_constant_side_warns(metric) -> None:
    x, _ = _pair()
    with pytest.warns(ConstantInputWarning, match="y has no variance") as caught:
        assert metric(x, np.full((300, 3), 2.5)) == 0.0
    assert caught[0].filename == __file__


def test_numpy_scalar_options_are_accepted() -> None:
    x, y = _pair()
    assert mean_cca(x, y, threshold=np.float32(0.98)) == pytest.approx(mean_cca(x, y, threshold=0.98), rel=1e-6)
    assert mean_cca(x, y, epsilon=np.float64(1e-3)) == mean_cca(x, y, epsilon=1e-3)
    assert linear_cka(x, y, debiased=np.bool_(True)) == linear_cka(x, y, debiased=True)
    assert svcca(x, y, keep=np.int64(3)) == svcca(x, y, keep=3)
    for bad in (np.float32(1.5), np.nan, True, "0.9"):
        with pytest.raises(BadInputError, match="threshold"):
            mean_cca(x, y, threshold=bad)


def test_cli_names_the_files_and_writes_strict_json(tmp_path, capsys) -> None:
    x, y = _pair()
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "short.npy", y[:100])
    np.save(tmp_path / "flat.npy", np.ones((300, 2)))
    bad = y.copy()
    bad[5, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    assert main(["similarity", str(tmp_path / "a.npy"), str(tmp_path / "short.npy")]) == 2
    err = capsys.readouterr().err
    assert "A has shape (300, 6), B has shape (100, 5)" in err and " x " not in err
    assert main(["similarity", str(tmp_path / "a.npy"), str(tmp_path / "nan.npy")]) == 2
    assert capsys.readouterr().err.startswith("etude: error: B contains NaN")
    for method in ("pwcca", "cka"):
        assert main(["similarity", str(tmp_path / "flat.npy"), str(tmp_path / "a.npy"), "--json", "--method", method]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out, parse_constant=lambda c: pytest.fail(f"JSON holds {c}"))["similarity"] == 0.0
        assert err.startswith("etude: warning: A has no variance")


@pytest.mark.parametrize("scale", [1e-80, 1e150, 1e-300])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_minibatch_cka_is_scale_invariant(scale: float, dtype: str) -> None:
    from etude.similarity import MinibatchCKA

    x, y = _pair()
    for debiased in (False, True):
        cka = MinibatchCKA(debiased, dtype=dtype)
        for start in range(0, 300, 60):
            cka.update(x[start:start + 60] * scale, y[start:start + 60] * scale)
        assert cka.value() == pytest.approx(linear_cka(x, y, debiased), abs=1e-5 if dtype == "float32" else 1e-12)
