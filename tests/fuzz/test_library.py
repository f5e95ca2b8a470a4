"""Random arguments at the main library functions: every outcome is a result or an EtudeError, never another exception."""

from __future__ import annotations

import json
import warnings

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from etude.errors import EtudeError, EtudeWarning

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([1e-300, 1e300, -0.0, 5e-324])
ANY_VALUE = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | FLOATS | st.text(max_size=8)
             | st.lists(st.integers(-3, 3), max_size=3))


def _outcome(call):
    """Run ``call``; EtudeError is a fine outcome, EtudeWarnings are allowed, anything else fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EtudeWarning)
        try:
            return call()
        except EtudeError as exc:
            assert str(exc) and "\n" not in str(exc).strip(), repr(exc)
            return exc


def _matrix(rows: int, cols: int):
    dtypes = st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.bool_, np.float16])
    return dtypes.flatmap(lambda d: hnp.arrays(d, (rows, cols)))


@st.composite
def _pair(draw):
    n = draw(st.integers(0, 12))
    x = draw(_matrix(n, draw(st.integers(0, 4))) | _matrix(draw(st.integers(0, 12)), 2))
    y = draw(_matrix(n, draw(st.integers(0, 4))))
    scale = draw(st.sampled_from([1.0, 1e-200, 1e200, 1e30]))
    with np.errstate(all="ignore"):
        return (x * scale if x.dtype.kind == "f" else x), y


@given(_pair(), st.sampled_from(["mean_cca", "pwcca", "svcca", "linear_cka", "cca"]), ANY_VALUE, ANY_VALUE,
       st.sampled_from(["float64", "float32", "float16", None, 3]))
def test_similarity_functions(pair, name, option, option2, dtype) -> None:
    from etude import similarity

    x, y = pair
    fn = getattr(similarity, name)
    kwargs = {"mean_cca": {"threshold": option, "epsilon": option2}, "pwcca": {"epsilon": option, "variant": option2},
              "svcca": {"keep": option}, "linear_cka": {"debiased": option}, "cca": {"epsilon": option}}[name]
    for call in (lambda: fn(x, y, dtype=dtype), lambda: fn(x, y, **kwargs), lambda: fn(torch.from_numpy(
            np.asarray(x, dtype=np.float64)), y)):
        out = _outcome(call)
        if isinstance(out, float):
            assert np.isfinite(out) and -1e-9 <= out <= 1 + 1e-9, out


@given(st.lists(_matrix(6, 3), min_size=0, max_size=3), st.sampled_from(["cca", "svcca", "pwcca", "cka", "x"]))
def test_pairwise(reps, metric) -> None:
    from etude.similarity import pairwise

    out = _outcome(lambda: pairwise(reps, metric))
    if isinstance(out, np.ndarray):
        assert np.isfinite(out).all()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)
RESULT_KEYS = ["study", "preset", "seed", "claims", "metrics", "artifacts", "status", "error", "wall_time_s",
               "settings", "versions", "schema_version"]


@st.composite
def _result_json(draw):
    data = {key: draw(JSON) for key in draw(st.lists(st.sampled_from(RESULT_KEYS), unique=True))}
    if draw(st.booleans()):
        data["claims"] = [draw(st.dictionaries(st.sampled_from(["id", "statement", "paper", "criterion", "verdict",
                                                                "measured", "note"]), JSON | st.sampled_from(
                                                                    ["holds", "fails", "<b>x</b>"]), max_size=7))
                          for _ in range(draw(st.integers(0, 2)))]
    if draw(st.booleans()):
        data["artifacts"] = draw(st.lists(st.sampled_from(["a.png", "../x.png", "/etc/passwd", "sub/b.wav", "",
                                                           "c.mid", "link.png", "x" * 300]) | JSON, max_size=4))
    return draw(st.sampled_from([data, draw(JSON)]))


@given(st.lists(_result_json(), min_size=1, max_size=3), st.binary(max_size=40))
def test_report_renders_any_result_json(tmp_path_factory, results, garbage) -> None:
    from etude.studies import Result, write_report
    from etude.studies.html import write_html

    run = tmp_path_factory.mktemp("run")
    for i, data in enumerate(results):
        folder = run / f"s{i}"
        folder.mkdir()
        (folder / "result.json").write_text(json.dumps(data))
        (folder / "a.png").write_bytes(b"\x89PNG" + garbage)
        (folder / "link.png").symlink_to("/etc/hostname")
        _outcome(lambda: Result.from_dict(data))  # strict: a Result or a BadInputError
    (run / "run.json").write_bytes(garbage)
    assert write_report(run).is_file() and write_html(run).is_file()  # never an error: notes instead
    page = (run / "report.html").read_text()
    assert "<b>x</b>" not in page and "<b>x</b>" not in (run / "report.md").read_text()


@given(st.dictionaries(st.sampled_from(["steps", "lr", "flag", "label", "sizes", "nope", ""]),
                       st.text(max_size=12) | st.sampled_from(["1e400", "nan", "inf", "-1", "10**9", "9" * 40,
                                                               "[1, 2]", "[" * 50, "true"]), max_size=3))
def test_apply_overrides(overrides) -> None:
    from dataclasses import dataclass, field

    from etude.studies.protocol import apply_overrides, override_limits

    @dataclass(frozen=True)
    class P:
        steps: int = 10
        lr: float = 0.5
        flag: bool = False
        label: str = "x"
        sizes: tuple = field(default=(2, 3))

    out = _outcome(lambda: apply_overrides(P(), overrides, override_limits([P()])))
    if isinstance(out, P):
        assert 0 <= out.steps <= 100 and np.isfinite(out.lr)


def _checkpoint_bytes() -> tuple[bytes, dict, list[int]]:
    """A checkpoint of a seeded Linear(3, 2) and a step counter: its bytes, its state, and the offsets of
    the tensors' raw data inside the file (where a flipped byte changes a weight, not the zip structure)."""
    import io

    from etude.runtime.checkpoint import HEADER

    torch.manual_seed(0)
    state = {"model": torch.nn.Linear(3, 2).state_dict(), "step": 3}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    import hashlib

    payload = buffer.getvalue()
    data = HEADER + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    offsets = []
    for tensor in state["model"].values():
        raw = tensor.numpy().tobytes()
        start = data.index(raw)
        offsets += range(start, start + len(raw))
    return data, state, offsets


_CKPT, _CKPT_STATE, _TENSOR_OFFSETS = _checkpoint_bytes()


@given(
    st.binary(max_size=300),
    st.integers(0, len(_CKPT) - 1) | st.sampled_from(_TENSOR_OFFSETS),
    st.integers(0, 255),
)
def test_checkpoint_loading(tmp_path_factory, raw, where, value) -> None:
    """Any changed byte (header, hash, zip structure or a weight's raw bytes) is refused; an unchanged file
    loads the saved values; random bytes are refused."""
    from etude.errors import CheckpointError
    from etude.runtime import load_checkpoint, save_checkpoint

    folder = tmp_path_factory.mktemp("ckpt")
    path = folder / "c.pt"
    save_checkpoint(path, _CKPT_STATE)
    assert path.read_bytes() == _CKPT  # the layout _TENSOR_OFFSETS was computed for
    data = bytearray(_CKPT)
    data[where] = value
    path.write_bytes(bytes(data))
    like = {"model": _CKPT_STATE["model"], "step": int}
    out = _outcome(lambda: load_checkpoint(path, like=like))
    if bytes(data) == _CKPT:
        assert isinstance(out, dict) and out["step"] == 3
        for key, tensor in _CKPT_STATE["model"].items():
            assert torch.equal(out["model"][key], tensor)
    else:
        assert isinstance(out, CheckpointError), (where, value, out)
    path.write_bytes(raw)
    assert isinstance(_outcome(lambda: load_checkpoint(path)), CheckpointError)


@given(hnp.arrays(np.float64, st.tuples(st.integers(0, 3), st.integers(0, 6)), elements=FLOATS),
       hnp.arrays(np.float64, st.integers(0, 6), elements=FLOATS), ANY_VALUE)
def test_games_exact_values(theta1, theta2, gamma) -> None:
    from etude.games import ipd, matching_pennies
    from etude.games.matrix import exact_values

    game = _outcome(lambda: ipd(gamma)) if gamma is not None else matching_pennies()
    if isinstance(game, EtudeError):
        return
    out = _outcome(lambda: exact_values(game, torch.from_numpy(theta1), torch.from_numpy(theta2)))
    if isinstance(out, tuple):
        assert all(bool(torch.isfinite(v).all()) for v in out)


@given(st.integers(-2, 5), ANY_VALUE, hnp.arrays(np.float64, st.tuples(st.integers(0, 3), st.integers(0, 4)),
                                                 elements=FLOATS))
def test_exchangeable_processes(dim, nu, x) -> None:
    from etude.exchangeable.processes import GaussianProcess, StudentTProcess

    for make in (lambda: StudentTProcess(dim, nu=nu), lambda: GaussianProcess(dim, corr=nu)):
        process = _outcome(make)
        if isinstance(process, EtudeError):
            continue
        out = _outcome(lambda: process.log_prob(torch.from_numpy(x)))
        if isinstance(out, torch.Tensor):  # -inf is a fair log density of 1e154; NaN is not
            assert not bool(torch.isnan(out).any()) and not bool((out == float("inf")).any())


@given(st.sampled_from(["mc", "qmc", "rqmc", "sobol"]), st.integers(-1, 40_000) | ANY_VALUE, ANY_VALUE,
       st.integers(-1, 70))
def test_base_samplers(kind, dim, seed, n) -> None:
    from etude.vi import make_sampler

    sampler = _outcome(lambda: make_sampler(kind, dim if not isinstance(dim, int) or dim < 300 else 300, seed))
    if isinstance(sampler, EtudeError):
        return
    for dtype in (torch.float64, torch.float32):
        out = _outcome(lambda: sampler.normal(n, dtype))
        if isinstance(out, torch.Tensor):
            assert out.shape == (n, sampler.dim) and bool(torch.isfinite(out).all())


@given(st.binary(max_size=200), st.lists(st.integers(-5, 500), max_size=30))
def test_music_files_and_ids(tmp_path_factory, raw, ids) -> None:
    from etude.music import Performance, PerformanceEncoding

    path = tmp_path_factory.mktemp("midi") / "x.mid"
    path.write_bytes(b"MThd" + raw if raw[:1] == b"\x00" else raw)
    _outcome(lambda: Performance.from_midi(path))
    out = _outcome(lambda: PerformanceEncoding().decode(np.asarray(ids, dtype=np.int64)))
    if isinstance(out, Performance):
        _outcome(lambda: out.to_midi(path))


@given(hnp.arrays(np.float64, st.integers(0, 50), elements=FLOATS), st.integers(-3, 70_000))
def test_audio_codecs(tmp_path_factory, audio, channels) -> None:
    from etude.audio import mulaw_decode, mulaw_encode, write_wav

    q = _outcome(lambda: mulaw_encode(torch.from_numpy(audio), channels))
    if isinstance(q, torch.Tensor):
        assert bool(((q >= 0) & (q < channels)).all())
        _outcome(lambda: mulaw_decode(q, channels))
    _outcome(lambda: write_wav(tmp_path_factory.mktemp("wav") / "a.wav", audio))
