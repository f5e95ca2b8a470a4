"""Code stability, the paired interval, and the metavae criteria (etude.meta.criteria) on figures that must not pass."""

import itertools

import numpy as np
import pytest
import torch

from etude.errors import BadInputError
from etude.meta import code_stability, paired_difference
from etude.meta.criteria import beats_rivals_rule, mog_rule, scale_rule, stability_rule


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_code_stability_matches_a_loop(seed):
    z = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    within = np.mean([float((z[v, q] - z[w, q]).norm()) for q in range(6) for v, w in itertools.permutations(range(4), 2)])
    between = np.mean([float((z[v, q] - z[v, r]).norm()) for v in range(4) for q, r in itertools.permutations(range(6), 2)])
    assert code_stability(z) == pytest.approx(within / between, rel=1e-10)


def test_code_stability_is_zero_for_invariant_codes_and_scale_free():
    images = torch.randn(1, 10, 5, generator=torch.Generator().manual_seed(0))
    assert code_stability(images.expand(7, 10, 5)) == pytest.approx(0.0, abs=1e-7)
    z = torch.randn(3, 8, 4, generator=torch.Generator().manual_seed(1))
    assert code_stability(5 * z) == pytest.approx(code_stability(z), rel=1e-6)
    with pytest.raises(BadInputError):
        code_stability(torch.zeros(1, 4, 2))


def test_paired_difference_is_the_mean_and_normal_interval():
    a, b = np.array([0.3, 0.2, 0.4, 0.1]), np.array([0.1, 0.1, 0.1, 0.1])
    mean, low, high = paired_difference(a, b)
    d = a - b
    se = d.std(ddof=1) / 2
    assert (mean, low, high) == pytest.approx((d.mean(), d.mean() - 1.96 * se, d.mean() + 1.96 * se))
    with pytest.raises(BadInputError):
        paired_difference(a, b[:3])


def _noise(seed, n=3, lo=0.1, hi=0.9):
    return list(np.random.default_rng(seed).uniform(lo, hi, n))


@pytest.mark.parametrize("seed", range(5))
def test_mog_rule_fails_or_abstains_unless_metavae_errs_less(seed):
    rng = np.random.default_rng(seed)
    vae = rng.uniform(0.05, 0.3, 150)
    verdicts = {}
    for name, shift in (("worse", 0.05), ("same", 0.0), ("better", -0.05)):
        meta = np.clip(vae + shift + rng.normal(0, 0.05, 150), 0, 1)
        holds, conclusive, d = mog_rule(vae, meta, 3, 50, 1500)
        verdicts[name] = "inconclusive" if not conclusive else ("holds" if holds else "fails")
        assert d["pairs"] == 150 and d["low"] <= d["mean"] <= d["high"]
    assert verdicts == {"worse": "fails", "same": "inconclusive", "better": "holds"}
    # a constant (the same errors for both) cannot hold; too few seeds or steps cannot decide
    assert mog_rule(vae, vae, 3, 50, 1500)[:2] == (False, False)
    assert mog_rule(vae, vae - 0.05, 2, 50, 1500)[1] is False and mog_rule(vae, vae - 0.05, 3, 50, 100)[1] is False


def test_probe_rule_needs_a_win_in_every_seed_over_both_baselines():
    acc = {"MetaVAE": [0.8, 0.8, 0.8], "NS": [0.5, 0.6, 0.5], "VHE": [0.6, 0.5, 0.6], "VAE": [0.9] * 3}
    assert beats_rivals_rule(acc, 500) == (True, True)  # VAE is no rival of the paper's
    assert beats_rivals_rule({**acc, "MetaVAE": [0.9, 0.9, 0.55]}, 500) == (False, True)  # one seed lost
    assert beats_rivals_rule({**acc, "MetaVAE": acc["VHE"]}, 500)[0] is False  # a tie is no win
    assert beats_rivals_rule(acc, 100) == (True, False) and beats_rivals_rule({k: v[:2] for k, v in acc.items()}, 500)[1] is False
    # noise: every method's accuracy drawn from one distribution does not hold (over many draws, rarely)
    wins = sum(beats_rivals_rule({m: _noise(100 * t + i) for i, m in enumerate(("MetaVAE", "NS", "VHE"))}, 500)[0]
               for t in range(200))
    assert wins / 200 < 0.15  # chance of leading two rivals in all 3 seeds: about 1/27 per draw


def test_scale_rule_needs_the_margin():
    acc = {"MetaVAE": [0.9] * 3, "NS": [0.35] * 3, "VHE": [0.45] * 3}
    assert scale_rule(acc, 2000) == (True, True)
    assert scale_rule({**acc, "MetaVAE": [0.6] * 3}, 2000)[0] is False  # ahead, but by less than SCALE_MARGIN
    assert scale_rule({k: [0.5] * 3 for k in acc}, 2000)[0] is False  # a constant


def test_stability_rule_fails_when_metavae_codes_move_like_the_baselines():
    same = {"raw pixels": [0.8] * 3, "MetaVAE": [0.5, 0.6, 0.5], "NS": [0.5, 0.5, 0.6], "VHE": [0.7] * 3,
            "VAE": [0.3] * 3}
    assert stability_rule(same, 500)[0] is False
    assert stability_rule({**same, "MetaVAE": [0.4] * 3}, 500) == (True, True)  # VAE is reported, not a rival
    assert stability_rule({**same, "MetaVAE": [float("nan")] * 3}, 500)[0] is False
    wins = sum(stability_rule({m: _noise(100 * t + i) for i, m in enumerate(("MetaVAE", "NS", "VHE"))}, 500)[0]
               for t in range(200))
    assert wins / 200 < 0.15


def test_code_stability_of_an_untrained_metavae_is_no_better_than_an_untrained_ns():
    """Untrained models' codes: the stability criterion has nothing to find (no training, no invariance)."""
    from etude.meta import MetaVAE, NeuralStatistician, load_digit_images, transformation_family

    images, _ = load_digit_images()
    fam = transformation_family(images[:60], "rotate", [-40.0, 0.0, 40.0])
    ratios = {}
    for seed in range(3):
        torch.manual_seed(seed)
        models = {"MetaVAE": MetaVAE(64, 8, 3, 32, likelihood="bernoulli"),
                  "NS": NeuralStatistician(64, 8, 16, 32, "bernoulli"),
                  "VHE": NeuralStatistician(64, 8, 16, 32, "bernoulli")}
        with torch.no_grad():
            for name, model in models.items():
                ratios.setdefault(name, []).append(code_stability(model.encode(fam, fam[:, :10])))
    assert all(0.3 < r < 3 for v in ratios.values() for r in v)  # codes move about as far as images differ
    assert stability_rule(ratios, 0)[1] is False  # untrained: no steps, never conclusive


def test_paired_difference_lives_in_one_shared_module():
    import etude.meta
    import etude.statistics

    assert etude.meta.paired_difference is etude.statistics.paired_difference
