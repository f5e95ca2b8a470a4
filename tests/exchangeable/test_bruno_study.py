"""The bruno study's experiments and criteria: the process learning rate, correlation quantiles,
dequantized few-shot episodes, and criteria that fail on chance-level figures."""

import pytest
import torch

from etude.exchangeable import Bruno, load_digit_splits, sample_sequences, train_bruno
from etude.exchangeable.experiments import correlation_quantiles, few_shot_accuracy, mean_se
from etude.exchangeable.study import BrunoStudy


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
    model = Bruno.build((1, 8, 8), 17, flow="none")
    a = few_shot_accuracy(model, splits.unseen_x, splits.unseen_y, 5, 1, 40, seed=3)
    assert a == few_shot_accuracy(model, splits.unseen_x, splits.unseen_y, 5, 1, 40, seed=3)
    # labels shuffled: the support sets no longer share the query's class, so accuracy falls to chance
    y = splits.unseen_y[torch.randperm(len(splits.unseen_y), generator=torch.Generator().manual_seed(1))]
    noise = few_shot_accuracy(model, splits.unseen_x, y, 5, 1, 100, seed=3)
    assert abs(noise["bruno"] - 0.2) < 0.1 and abs(noise["nn"] - 0.2) < 0.1
    assert a["bruno"] > 0.4 and a["nn"] > 0.4  # real classes: far above chance even without training


def _fake_runs(acc, fraction):
    return [{"shots": {1: {"bruno": acc, "nn": acc}, 5: {"bruno": acc + 0.01, "nn": acc}},
             "samples": {"unseen": (fraction, []), "seen": (fraction, [])}}]


def test_criteria_fail_on_chance_level_figures():
    study, p = BrunoStudy(), BrunoStudy.presets["quick"]
    claims = {c.id: c for c in study.claims()}
    study._decide_few_shot(claims["few_shot"], _fake_runs(0.2, 0.1), {}, p)
    study._decide_samples(claims["samples_match_set"], _fake_runs(0.2, 0.1), {}, p)
    assert claims["few_shot"].verdict == "fails" and claims["samples_match_set"].verdict == "fails"
    study._decide_few_shot(claims["few_shot"], _fake_runs(0.8, 0.7), {}, p)
    study._decide_samples(claims["samples_match_set"], _fake_runs(0.8, 0.7), {}, p)
    assert claims["few_shot"].verdict == "holds" and claims["samples_match_set"].verdict == "holds"


def test_bpd_criterion_fails_on_flat_curves():
    study, p = BrunoStudy(), BrunoStudy.presets["quick"]
    claim = {c.id: c for c in study.claims()}["bpd_falls"]
    g = torch.Generator().manual_seed(0)
    flat = {label: {s: 3 + 0.01 * torch.randn(200, 20, generator=g) for s in ("seen", "unseen")}
            for label in ("TP", "GP", "TP no flow")}
    corr = {k: [[0.1, 0.1, 0.1]] for k in flat}
    study._decide_bpd(claim, flat, corr, {"parameters": {"TP": 1}, "best_step": {"TP": [0]}}, p, [None], True)
    assert claim.verdict == "fails"
    assert mean_se(torch.tensor([1.0, 3.0])) == pytest.approx((2.0, 1.0))
