"""The bruno study's experiments and criteria (etude.exchangeable.criteria, tested directly): the process
learning rate, correlation quantiles, dequantized few-shot episodes, rules that fail on chance-level,
constant or untrained figures, and the interval helpers of etude.statistics they use."""

import numpy as np
import pytest
import torch

from etude.exchangeable import Bruno, load_digit_splits, sample_sequences, train_bruno
from etude.exchangeable.criteria import bpd_rule, few_shot_rule, gp_matches_tp_rule, samples_rule, tp_beats_gp_rule
from etude.exchangeable.experiments import correlation_quantiles, few_shot_accuracy
from etude.statistics import independent_difference, mean_interval, mean_se


@pytest.mark.parametrize("mult", [1.0, 30.0])
def test_first_adam_step_moves_process_parameters_by_lr_times_multiplier(mult):
    torch.manual_seed(0)
    model = Bruno.build((1, 8, 8), 17, flow="realnvp", hidden=2, blocks=0)
    data = torch.randint(0, 17, (40, 1, 8, 8)).float()
    labels = torch.arange(40) % 2
    before = {k: v.clone() for k, v in model.process.state_dict().items()}
    flow_before = {k: v.clone() for k, v in model.flow.state_dict().items()}
    lr = 1e-3
    train_bruno(model, lambda g: sample_sequences(data, labels, 2, 5, g)[0], 1, lr=lr, warmup=0,
                process_scale=0.1, process_lr_mult=mult)
    # Adam's first step is lr * g / (|g| + eps): each coordinate with a gradient moves by lr x the multiplier
    for name in ("a", "b"):
        step = (model.process.state_dict()[name] - before[name]).abs()
        assert float(step.max()) <= lr * mult * 1.001, name  # |g| / (|g| + eps) <= 1
        assert float(step.median()) == pytest.approx(lr * mult, rel=1e-3), name
    w = next(k for k in flow_before if k.endswith("weight"))
    moved = (model.flow.state_dict()[w] - flow_before[w]).abs()
    assert float(moved.max()) <= lr * 1.001


def test_bad_process_lr_mult_raises():
    model = Bruno.build((1, 8, 8), 17, flow="none")
    with pytest.raises(Exception, match="process_lr_mult"):
        train_bruno(model, lambda g: torch.zeros(1, 2, 1, 8, 8), 1, process_lr_mult=0.0)


def test_correlation_quantiles_match_a_sort():
    model = Bruno.build((1, 8, 8), 17, flow="none", corr=torch.linspace(0.05, 0.95, 64))
    q10, q50, q90 = correlation_quantiles(model)
    corr = torch.linspace(0.05, 0.95, 64).double()
    assert q50 == pytest.approx(float(corr.median() + corr.sort().values[32]) / 2, abs=1e-6)
    assert q10 == pytest.approx(0.05 + 0.1 * 0.9, abs=1e-6) and q90 == pytest.approx(0.05 + 0.9 * 0.9, abs=1e-6)


def test_few_shot_is_deterministic_and_an_untrained_model_is_near_chance_on_noise():
    splits = load_digit_splits(0)
    torch.manual_seed(0)
    models = {"TP": Bruno.build((1, 8, 8), 17, flow="none"), "GP": Bruno.build((1, 8, 8), 17, flow="none", process="gp")}
    a = few_shot_accuracy(models, splits.unseen_x, splits.unseen_y, 5, 1, 40, seed=3)
    b = few_shot_accuracy(models, splits.unseen_x, splits.unseen_y, 5, 1, 40, seed=3)
    assert set(a) == {"TP", "GP", "pixel NN"} and all(torch.equal(a[k], b[k]) and a[k].shape == (40,) for k in a)
    # labels shuffled: the support sets no longer share the query's class, so accuracy falls to chance
    y = splits.unseen_y[torch.randperm(len(splits.unseen_y), generator=torch.Generator().manual_seed(1))]
    noise = few_shot_accuracy(models, splits.unseen_x, y, 5, 1, 100, seed=3)
    assert all(abs(float(v.mean()) - 0.2) < 0.1 for v in noise.values())
    assert all(float(v.mean()) > 0.4 for v in a.values())  # real classes: far above chance even without training
    # the criterion on the shuffled-label (noise) episodes fails; on these 100 episodes it is decided
    assert few_shot_rule(noise["TP"], noise["TP"], True) == (False, True)


def _episodes(p, n=500, seed=0):
    """Per-episode 5-way accuracies: means of 5 Bernoulli(p) queries."""
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.binomial(5, p, n) / 5.0)


def test_few_shot_rule_needs_both_floors_and_a_gain_from_more_shots():
    assert few_shot_rule(_episodes(0.65, seed=1), _episodes(0.85, seed=2), True) == (True, True)
    assert few_shot_rule(_episodes(0.2, seed=1), _episodes(0.2, seed=2), True) == (False, True)  # chance
    assert few_shot_rule(_episodes(0.65, seed=1), _episodes(0.6, seed=2), True) == (False, True)  # 5-shot below floor
    assert few_shot_rule(torch.full((500,), 0.6), torch.full((500,), 0.6), True)[0] is False  # a constant
    assert few_shot_rule(_episodes(0.51, 20, seed=1), _episodes(0.85, 20, seed=2), True) == (False, False)  # straddles
    assert few_shot_rule(_episodes(0.65, seed=1), _episodes(0.85, seed=2), False) == (True, False)


def test_gp_rule_is_an_equivalence_test():
    tp = _episodes(0.7, seed=1)
    assert gp_matches_tp_rule({1: (tp, tp.clone()), 5: (tp, tp.clone())}, True) == (True, True)
    chance = _episodes(0.2, seed=3)  # an untrained GP: chance accuracy against a trained TP
    assert gp_matches_tp_rule({1: (tp, chance), 5: (tp, tp.clone())}, True) == (False, True)
    noisy = _episodes(0.66, 30, seed=4)
    assert gp_matches_tp_rule({1: (tp[:30], noisy), 5: (tp[:30], noisy)}, True)[1] is False  # too few episodes


def test_samples_rule_decides_on_the_interval_over_sets():
    g = torch.Generator().manual_seed(0)
    assert samples_rule(0.8 + 0.1 * torch.rand(40, generator=g), True) == (True, True)
    assert samples_rule(0.1 * torch.rand(40, generator=g), True) == (False, True)  # chance over ten digits
    straddle = [0.3, 0.7, 0.45, 0.55, 0.2, 0.8, 0.48, 0.5]  # mean 0.497, the interval holds 0.5
    assert samples_rule(straddle, True) == (False, False)
    assert samples_rule([0.9, 0.8, 0.85], False) == (True, False)


def test_tp_gp_rule_on_paired_differences():
    g = torch.Generator().manual_seed(0)
    assert tp_beats_gp_rule(0.05 + 0.01 * torch.randn(300, generator=g), True) == (True, True)
    assert tp_beats_gp_rule(-0.05 + 0.01 * torch.randn(300, generator=g), True) == (False, True)
    decided = [tp_beats_gp_rule(0.01 * torch.randn(300, generator=g), True) for _ in range(200)]
    assert sum(h and c for h, c in decided) / 200 < 0.1  # noise holds about 2.5% of the time
    assert tp_beats_gp_rule(torch.zeros(300), True) == (False, False)  # a constant


def test_bpd_rule_fails_on_flat_curves_and_holds_on_falling_ones():
    g = torch.Generator().manual_seed(0)
    flat = 3 + 0.01 * torch.randn(200, 20, generator=g)
    falling = 3 - 0.5 * torch.log1p(torch.arange(20.0)) + 0.01 * torch.randn(200, 20, generator=g)
    assert bpd_rule(flat, flat, True)[0] is False
    assert bpd_rule(falling, falling, True) == (True, True)
    assert bpd_rule(falling, flat, True)[0] is False  # both splits must fall


def test_interval_helpers_are_the_textbook_ones():
    from scipy import stats

    x = np.array([0.3, 0.5, 0.4, 0.9, 0.6])
    mean, low, high = mean_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (low, high) == pytest.approx(ref) and mean == pytest.approx(x.mean())
    assert mean_se(torch.tensor([1.0, 3.0])) == pytest.approx((2.0, 1.0))
    a, b = np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.5, 1.0, 2.5])
    d, lo, hi = independent_difference(a, b)
    se = np.sqrt(a.var(ddof=1) / 3 + b.var(ddof=1) / 4)
    assert (d, lo, hi) == pytest.approx((a.mean() - b.mean(), a.mean() - b.mean() - 1.96 * se, a.mean() - b.mean() + 1.96 * se))
    assert np.isnan(mean_interval([1.0])[1])
