"""The lola study's criteria fail on noise, constants and untrained policies, and hold on a clear win."""

import torch

from etude.games.experiments import median_policy as _median_policy
from etude.games.study import LolaStudy
from etude.games import ipd, train


def test_median_policy_of_selected_runs():
    h = train(ipd(), "lola", "lola", steps=0, seeds=3)
    runs = torch.tensor([True, False, True])
    got = _median_policy(h, runs)
    p = torch.sigmoid(h.theta[runs, -1]).reshape(-1, 5)
    assert list(got) == ["start", "CC", "CD", "DC", "DD"]
    assert got["CD"] == float(p[:, 2].median())
    assert all(v != v for v in _median_policy(h, torch.zeros(3, dtype=torch.bool)).values())  # NaN when none


def test_presets_grow_from_smoke_to_long_and_quick_coin_is_inconclusive():
    presets = LolaStudy.presets
    assert list(presets) == ["smoke", "quick", "long", "full"]
    for p in (presets["smoke"], presets["quick"]):
        assert not (p.coin_seeds >= 8 and p.coin_steps >= 1000)  # too small to decide the coin claims
    assert presets["long"].coin_seeds >= 8 and presets["long"].coin_steps >= 1000
