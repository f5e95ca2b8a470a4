"""`etude similarity A.npy B.npy` and `etude reproduce pwcca --preset smoke` end to end."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from tests.similarity.similarity_reference import make_layers

from etude.cli import main
from etude.similarity import linear_cka, mean_cca, pwcca, svcca

PWCCA_CLAIMS = ["gen_more_similar", "wider_more_similar", "bottom_up", "lr_clusters", "similarity_tracks_accuracy"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def arrays(tmp_path):
    a, b = make_layers(0, n=200, widths=(8, 12))
    pa, pb = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(pa, a)
    np.save(pb, b)
    return a, b, str(pa), str(pb)


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("etude: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], lambda a, b: pwcca(a, b)),
        (["--method", "pwcca", "--variant", "paper", "--epsilon", "1e-4"], lambda a, b: pwcca(a, b, 1e-4, "paper")),
        (["--method", "svcca", "--keep", "5"], lambda a, b: svcca(a, b, keep=5)),
        (["--method", "svcca"], lambda a, b: svcca(a, b)),
        (["--method", "cca", "--threshold", "0.98"], lambda a, b: mean_cca(a, b, threshold=0.98)),
        (["--method", "cka", "--debiased"], lambda a, b: linear_cka(a, b, debiased=True)),
    ],
)
def test_prints_the_number(arrays, capsys, args, expected):
    a, b, pa, pb = arrays
    assert main(["similarity", pa, pb, *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == f"{expected(a, b):.6f}\n"


def test_json_output(arrays, capsys):
    a, b, pa, pb = arrays
    assert main(["similarity", pb, pa, "--method", "cka", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["similarity"] == pytest.approx(linear_cka(b, a), abs=1e-15)
    assert (record["method"], record["a_shape"], record["b_shape"]) == ("cka", [200, 12], [200, 8])
    assert record["debiased"] is False


def test_conv_activations(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((20, 3, 4, 4)), rng.standard_normal((20, 5, 4, 4))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    assert main(["similarity", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--method", "cka",
                 "--conv", "pool"]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(linear_cka(a.mean((2, 3)), b.mean((2, 3))), abs=1e-6)
    assert main(["similarity", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 2
    assert "--conv" in _one_error_line(capsys.readouterr().err)


def test_small_sample_warning_is_one_stderr_line(tmp_path, capsys):
    a, b = make_layers(1, n=30, widths=(8, 4))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    assert main(["similarity", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]) == 0
    out, err = capsys.readouterr()
    assert 0.0 <= float(out) <= 1.0
    assert err.splitlines()[0].startswith("etude: warning: A has n=30 datapoints for p=8")  # the file, not x
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("case", ["missing", "rows", "corrupt", "ndim", "pickled"])
def test_bad_input_exits_2_with_one_line(arrays, tmp_path, capsys, case):
    a, b, pa, pb = arrays
    if case == "missing":
        args, words = [pa, str(tmp_path / "nope.npy")], ["B", "nope.npy"]
    elif case == "rows":
        np.save(tmp_path / "short.npy", b[:150])
        args, words = [pa, str(tmp_path / "short.npy")], ["(200, 8)", "(150, 12)"]
    elif case == "corrupt":
        (tmp_path / "bad.npy").write_bytes(b"not an array")
        args, words = [str(tmp_path / "bad.npy"), pb], ["A", "bad.npy", "not a readable"]
    elif case == "ndim":
        np.save(tmp_path / "vec.npy", a[:, 0])
        args, words = [str(tmp_path / "vec.npy"), pb], ["2-D", "(200,)"]
    else:
        np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        args, words = [str(tmp_path / "obj.npy"), pb], ["A", "obj.npy"]
    assert main(["similarity", *args]) == 2
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert out == ""
    for word in words:
        assert word in line, (word, line)


def test_unknown_method_is_an_argparse_error(arrays, capsys):
    _, _, pa, pb = arrays
    with pytest.raises(SystemExit) as info:
        main(["similarity", pa, pb, "--method", "rsa"])
    assert info.value.code == 2
    assert "invalid choice" in _one_error_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("pwcca") / "run"
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETUDE_PROGRESS", "0")
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            status = main(["reproduce", "pwcca", "--preset", "smoke", "--out", str(out_dir)])
    return status, out_dir, stdout.getvalue()


def test_reproduce_smoke(smoke):
    status, out_dir, stdout = smoke
    assert status == 0, stdout
    assert stdout.startswith("pwcca [") and "CRASHED" not in stdout
    result = json.loads((out_dir / "pwcca" / "result.json").read_text())
    assert result["status"] == "ok", result["error"]
    assert (result["study"], result["preset"]) == ("pwcca", "smoke")
    assert [c["id"] for c in result["claims"]] == PWCCA_CLAIMS
    for claim in result["claims"]:
        assert claim["measured"], claim
        assert claim["verdict"] == "inconclusive", claim  # the smoke preset is below every claim's minimum
    metrics = result["metrics"]
    for label in ("PWCCA", "SVCCA", "CKA"):
        for group in ("gen-gen", "mem-mem", "gen-mem"):
            values = metrics["by_layer"][label][group]
            assert len(values) == 3 and all(-0.1 <= v <= 1.0 + 1e-9 for v in values), (label, group, values)
    assert len(metrics["width_similarity"]["trained PWCCA"]) == 2
    assert len(metrics["width_similarity"]["untrained PWCCA top-layer 4 units"]) == 2
    assert [len(u) for u in metrics["width_subset_units"].values()] == [4, 4]
    assert len(metrics["lr_clusters"]["by_layer"]) == 3 and metrics["lr_layer"] == 2
    assert len(result["artifacts"]) == 6
    assert len(metrics["cnn_by_layer"]["PWCCA"]) == 2 and len(metrics["lr_clusters"]["truth"]) == 4
    for name in result["artifacts"]:
        assert (out_dir / "pwcca" / name).read_bytes().startswith(PNG_SIGNATURE), name
    assert result["wall_time_s"] < 60
