"""The amae study's decision rules (`etude.audio.criteria`), fed numbers and clips directly: each fails on
noise, a constant or an untrained model."""

import math

import numpy as np
import pytest
import torch

from etude.audio import criteria
from etude.audio.metrics import judge_reconstruction, judge_sample


def piano_like(seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    """Decaying harmonic notes (three partials each) with a little noise: tonal, like rendered piano."""
    t = np.arange(int(seconds * 16000)) / 16000
    rng = np.random.default_rng(seed)
    out = np.zeros_like(t)
    for i, f in enumerate((220.0, 277.2, 329.6, 440.0)):
        start = i * len(t) // 4
        tail = t[start:] - t[start]
        out[start:] += sum(0.15 / k * np.sin(2 * np.pi * f * k * tail) for k in (1, 2, 3)) * np.exp(-3 * tail)
    return (out + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


def test_codebook_usage_rule():
    k = 256
    good = {"vq": 12, "amae": 200, "vq_ema_restart": 150}
    assert criteria.codebook_usage_rule(good, k, 4 * k, True) == (True, True)
    constant = {"vq": 1, "amae": 1, "vq_ema_restart": 1}  # every crop mapped to one code
    assert criteria.codebook_usage_rule(constant, k, 4 * k, True) == (False, True)
    assert criteria.codebook_usage_rule({**good, "vq": 30}, k, 4 * k, True)[0] is False  # plain VQ did not collapse
    assert criteria.codebook_usage_rule(good, k, 2 * k - 1, True)[1] is False  # too few held-out codes
    assert criteria.codebook_usage_rule(good, k, 4 * k, False)[1] is False


def test_information_bound_rule():
    k, hop = 256, 8  # bound 1 bit per sample
    assert criteria.information_bound_rule({"amae": 0.4, "vq": 0.2}, k, hop, True) == (True, True, [])
    untrained = {"amae": 0.0, "vq": 0.0}  # codes an untrained decoder ignores gain nothing
    assert criteria.information_bound_rule(untrained, k, hop, True)[0] is False
    holds, _, leaks = criteria.information_bound_rule({"amae": 0.4, "vq": 1.5}, k, hop, True)
    assert not holds and leaks == ["vq"]
    assert criteria.information_bound_rule({"amae": float("nan")}, k, hop, True)[2] == ["amae"]


def test_total_nll_and_its_rule():
    # level 0: 3 bits/sample, level 1: 4 bits/code, prior 6 bits/top code, hops 8 and 4
    assert criteria.total_nll([3.0, 4.0], 6.0, (8, 4)) == pytest.approx(3 + (4 + 6 / 4) / 8)
    assert criteria.total_nll_rule(3.7, 3.6, True) == (True, True)
    # a stack whose codes cost nothing would beat the unconditional model: the claim fails
    assert criteria.total_nll_rule(criteria.total_nll([3.0, 0.0], 0.0, (8, 4)), 3.6, True) == (False, True)


@pytest.mark.parametrize("kind", ["noise", "constant"])
def test_audio_rule_fails_noise_and_a_constant(kind):
    ref = piano_like()
    bad = np.random.default_rng(1).standard_normal(len(ref)).astype(np.float32) * ref.std() if kind == "noise" else (
        np.full_like(ref, 0.05))
    for judge in (judge_reconstruction, judge_sample):
        passes, _ = judge(ref, bad)
        assert criteria.audio_rule(passes, audible=True) == (False, True)
    passes, _ = judge_reconstruction(ref, ref)
    assert criteria.audio_rule(passes, audible=True) == (True, True)
    assert criteria.audio_rule(passes, audible=False)[1] is False


def test_code_gain_is_a_paired_interval():
    rng = np.random.default_rng(0)
    free = 5 + rng.standard_normal(40)
    gain = criteria.code_gain(free - 0.5 + 0.01 * rng.standard_normal(40), free)
    assert gain["n"] == 40 and gain["low"] < gain["mean"] < gain["high"] and gain["low"] > 0.49
    nothing = criteria.code_gain(free + 0.01 * rng.standard_normal(40), free)
    assert nothing["low"] < 0 < nothing["high"]


def test_reconstruction_top_rule():
    informative = {"mean": 0.3, "low": 0.2, "high": 0.4}
    empty = {"mean": -0.01, "low": -0.05, "high": -0.001}  # the code-free baseline is as good: codes carry nothing
    assert criteria.reconstruction_top_rule(True, True, informative, 300, 2000) == (True, True)
    assert criteria.reconstruction_top_rule(False, True, empty, 300, 2000) == (False, True)  # fails, even young
    assert criteria.reconstruction_top_rule(False, True, informative, 300, 2000) == (False, False)  # too young
    assert criteria.reconstruction_top_rule(False, True, informative, 3000, 2000) == (False, True)
    assert criteria.reconstruction_top_rule(False, False, empty, 3000, 2000)[1] is False  # level 0 too young
    # noise decoded from the top codes fails its judgement, so the rule cannot hold on it
    ref = piano_like()
    passes, _ = judge_reconstruction(ref, np.random.default_rng(2).standard_normal(len(ref)).astype(np.float32) * 0.1)
    assert criteria.reconstruction_top_rule(passes, True, empty, 3000, 2000) == (False, True)


def test_prediction_gap_text():
    assert "4.0 dB short" in criteria.prediction_gap_text(-21.0, -25.0)
    assert "does not explain" in criteria.prediction_gap_text(-30.0, -25.0)
    assert "no prediction-error target" in criteria.prediction_gap_text(-21.0, None)


def test_no_audio_test_reaches_a_private_name():
    import pathlib
    import re

    reach = re.compile(r"\b[a-z_]+\._[a-z]|setattr\([a-z_]+, \"_[a-z]")  # a module attribute or setattr string starting with _
    for path in pathlib.Path(__file__).parent.glob("test_*.py"):
        assert not reach.search(path.read_text()), path


def test_study_run_is_short():
    import inspect

    from etude.audio.study import AmaeStudy

    assert len(inspect.getsource(AmaeStudy.run).splitlines()) <= 40
    assert math.isfinite(AmaeStudy.presets["long"].top_steps) and AmaeStudy.presets["long"].top_steps >= 3000
    assert torch.__version__  # torch is importable beside the rules (the rules themselves do not need it)
