"""The lola study's criteria fail on noise, constants and untrained policies, and hold on a clear win."""

import torch

from etude.games.coin_training import train_coin
from etude.games.study import LolaStudy, _larger_with_confidence, _median_policy, _om_cooperates
from etude.games import ipd, train


def test_coin_criterion_fails_on_untrained_policies_and_noise():
    kw = dict(steps=0, seeds=list(range(8)), horizon=20, hidden=8)
    a = train_coin("lola", "lola", episodes=16, **kw)  # the same untrained policies, other games
    b = train_coin("naive", "naive", episodes=17, **kw)
    for key in ("own_share", "reward"):
        holds, diff, half = _larger_with_confidence(a.final[key], b.final[key])
        assert not holds, (key, diff, half)
    # a 95% interval passes pure noise in about 2.5% of draws
    noise = torch.Generator().manual_seed(0)
    passed = [_larger_with_confidence(torch.rand(10, generator=noise), torch.rand(10, generator=noise))[0]
              for _ in range(400)]
    assert sum(passed) / 400 < 0.06
    x, y = torch.rand(10, generator=noise), torch.rand(10, generator=noise)
    assert not _larger_with_confidence(torch.full((10,), 0.5), torch.full((10,), 0.5))[0]
    assert _larger_with_confidence(torch.full((10,), 0.8) + 0.01 * x, torch.full((10,), 0.5) + 0.01 * y)[0]


def test_om_criterion_fails_when_nothing_is_learned():
    assert not _om_cooperates(-1.98, -1.98, -1.1)  # like naive learners
    assert not _om_cooperates(-1.5, -1.98, -1.1)  # better than NL but far from LOLA-PG
    assert _om_cooperates(-1.15, -1.98, -1.1)


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
