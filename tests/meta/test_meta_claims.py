"""Code stability, the paired interval, and the metavae criteria on figures that must not pass."""

import itertools

import numpy as np
import pytest
import torch

from etude.errors import BadInputError
from etude.meta import code_stability, paired_difference
from etude.meta.study import MetaVaeStudy


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


def _mog(meta_shift, seeds=3, n=50, seed=0):
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(seeds):
        vae = rng.uniform(0.05, 0.3, n)
        runs.append({"k-means (raw points)": list(rng.uniform(0, 0.02, n)), "VAE": list(vae),
                     "MetaVAE": list(np.clip(vae + meta_shift + rng.normal(0, 0.05, n), 0, 1)),
                     "NS": list(vae), "VHE": list(vae)})
    return runs


def test_mog_criterion_fails_or_abstains_unless_metavae_is_better():
    study, p = MetaVaeStudy(), MetaVaeStudy.presets["quick"]
    verdict = {}
    for name, shift in (("worse", 0.05), ("same", 0.0), ("better", -0.05)):
        claim = {c.id: c for c in study.claims()}["mog_clustering"]
        study._decide_mog(claim, _mog(shift), p)
        verdict[name] = claim.verdict
    assert verdict == {"worse": "fails", "same": "inconclusive", "better": "holds"}


def test_stability_criterion_fails_when_metavae_codes_move_like_the_others():
    study, p = MetaVaeStudy(), MetaVaeStudy.presets["quick"]
    claim = {c.id: c for c in study.claims()}["codes_stay_put"]
    same = {"raw pixels": [0.8] * 3, "MetaVAE": [0.5, 0.6, 0.5], "NS": [0.5, 0.5, 0.6], "VHE": [0.7] * 3,
            "VAE": [0.7] * 3}
    study._decide_stability(claim, same, p)
    assert claim.verdict == "fails"
    study._decide_stability(claim, {**same, "MetaVAE": [0.3, 0.3, 0.3]}, p)
    assert claim.verdict == "holds"


def test_paired_difference_lives_in_one_shared_module():
    import etude.meta
    import etude.statistics

    assert etude.meta.paired_difference is etude.statistics.paired_difference
