"""The lola study's criteria (etude.games.criteria) fail on noise, constants and untrained learners."""

import torch

from etude.games import criteria, ipd, train
from etude.games.coin_training import train_coin
from etude.games.experiments import at_nash, cooperating, summarize_coin
from etude.games.matrix import matching_pennies
from etude.statistics import difference_interval, mean_half_width


def _untrained(game, seeds=64):
    return train(game, "naive", "naive", steps=0, seeds=seeds)


def test_ipd_criteria_fail_on_untrained_learners():
    h = _untrained(ipd())
    r = h.final_rewards()
    mean, half = mean_half_width(r.mean(-1))
    frac = float(cooperating(r).double().mean())
    assert not criteria.nl_defect(mean, half, 0.1, 0.0, 64, 200)["holds"]  # random policies: about -1.5
    assert not criteria.lola_cooperate(mean, half, 0.1, frac, 0.0, {}, 64, 200)["holds"]
    assert criteria.nl_defect(-1.98, 0.01, 0.1, 0.0, 64, 200)["holds"]
    assert criteria.lola_cooperate(-1.05, 0.01, 0.1, 0.9, 0.8, {}, 64, 200)["holds"]
    assert criteria.nl_defect(-1.98, 0.01, 0.1, 0.0, 10, 200)["conclusive"] is False


def test_mp_nash_fails_on_untrained_and_on_a_constant():
    h = _untrained(matching_pennies())
    nash = float(at_nash(h).double().mean())  # theta ~ N(0, 1): hardly any run starts within 0.1 of 1/2
    assert not criteria.mp_nash(nash, nash, 64, 200)["holds"]
    assert not criteria.mp_nash(1.0, 1.0, 64, 200)["holds"]  # naive at Nash too: not the paper's contrast
    assert criteria.mp_nash(0.95, 0.0, 64, 200)["holds"]


def test_pg_and_om_criteria_fail_when_nothing_is_learned():
    assert not criteria.pg_cooperate(-1.5, -1.5, 0.0, 0.9, 32, 200)["holds"]  # no gain over NL-PG
    assert not criteria.pg_cooperate(-1.1, -1.98, 1.0, 0.0, 32, 200)["holds"]  # estimator unrelated to exact
    assert criteria.pg_cooperate(-1.1, -1.98, 1.0, 0.8, 32, 200)["holds"]
    assert not criteria.lola_om(-1.98, -1.98, -1.1, 0.0, 32, 200)["holds"]  # like naive learners
    assert not criteria.lola_om(-1.5, -1.98, -1.1, 0.2, 32, 200)["holds"]  # better than NL, far from LOLA-PG
    assert criteria.lola_om(-1.15, -1.98, -1.1, 0.9, 32, 200)["holds"]


def test_coin_criterion_fails_on_untrained_policies_noise_and_constants():
    kw = dict(steps=0, seeds=list(range(8)), horizon=20, hidden=8)
    coin = {
        "LOLA-PG": train_coin("lola", "lola", episodes=16, **kw),
        "NL-PG": train_coin("naive", "naive", episodes=17, **kw),
    }
    for key in ("own_share", "reward"):
        c = summarize_coin(coin, key)
        assert not criteria.coin_larger(key, **c, seeds=8, steps=1000)["holds"], c
    noise = torch.Generator().manual_seed(0)
    passed = []
    for _ in range(400):  # a 95% interval passes pure noise in about 2.5% of draws
        diff, half = difference_interval(torch.rand(10, generator=noise), torch.rand(10, generator=noise))
        passed.append(criteria.coin_larger("x", 0, 0, diff, half, 10, 1000)["holds"])
    assert sum(passed) / 400 < 0.06
    diff, half = difference_interval(torch.full((10,), 0.5), torch.full((10,), 0.5))
    assert not criteria.coin_larger("x", 0.5, 0.5, diff, half, 10, 1000)["holds"]
    x, y = torch.rand(10, generator=noise), torch.rand(10, generator=noise)
    diff, half = difference_interval(0.8 + 0.01 * x, 0.5 + 0.01 * y)
    assert criteria.coin_larger("x", 0.8, 0.5, diff, half, 10, 1000)["holds"]
    assert not criteria.coin_larger("x", 0.8, 0.5, diff, float("nan"), 10, 1000)["holds"]  # no interval, no claim
