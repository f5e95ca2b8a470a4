"""Opponent modelling: the fit is the maximum-likelihood estimate, it converges, and LOLA-OM / NL-OM train."""

import pytest
import torch

from etude.errors import BadInputError
from etude.games import initial_theta, ipd, train
from etude.games.dice import rollout_log_probs, sample_rollouts
from etude.games.opponent import estimate_error, fit_opponent


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_is_the_maximum_of_the_likelihood(seed):
    theta = initial_theta([seed, seed + 10])
    rollouts = sample_rollouts(ipd(), theta[:, 0], theta[:, 1], 8, 20, torch.Generator().manual_seed(seed))
    for agent in (1, 2):
        fitted = fit_opponent(rollouts, agent).requires_grad_(True)
        other = theta[:, 1 if agent == 1 else 0]
        pair = (fitted, other) if agent == 1 else (other, fitted)
        logp = rollout_log_probs(*pair, rollouts)[agent - 1]
        (grad,) = torch.autograd.grad(logp.sum(), fitted)
        interior = fitted.detach().abs() < 10.0
        assert interior.sum() > 4  # most states are seen with both actions
        assert torch.allclose(grad[interior], torch.zeros_like(grad[interior]), atol=1e-9)
        # at a clamped state every observed action was the same, so the likelihood rises toward the bound
        assert (grad[~interior] * fitted.detach()[~interior] >= 0).all()
        # any other parameters have a lower likelihood
        worse = rollout_log_probs(*((fitted + 0.1, other) if agent == 1 else (other, fitted + 0.1)), rollouts)
        assert (worse[agent - 1].sum(dim=(1, 2)) < logp.sum(dim=(1, 2))).all()


def test_each_agent_is_fitted_from_its_own_point_of_view():
    theta = initial_theta([3]) * 0.5  # no state is rare
    rollouts = sample_rollouts(ipd(), theta[:, 0], theta[:, 1], 3000, 20, torch.Generator().manual_seed(0))
    for agent in (1, 2):
        p_hat = torch.sigmoid(fit_opponent(rollouts, agent))
        assert torch.allclose(p_hat, torch.sigmoid(theta[:, agent - 1]), atol=0.03)


def test_unvisited_states_keep_the_previous_estimate():
    always_c = torch.full((1, 5), 10.0, dtype=torch.float64)
    rollouts = sample_rollouts(ipd(), always_c, always_c, 4, 10, torch.Generator().manual_seed(0))
    previous = torch.tensor([[0.0, 0.0, 0.7, -0.3, 0.2]], dtype=torch.float64)
    fitted = fit_opponent(rollouts, 2, previous=previous)
    assert fitted[0, :2].tolist() == [10.0, 10.0]  # start and CC, always C: clamped at the bound
    assert torch.equal(fitted[0, 2:], previous[0, 2:])  # never visited


def test_estimate_error_falls_with_the_number_of_episodes():
    theta = initial_theta(range(16))
    errors = estimate_error(ipd(), theta, [2, 32, 512], 20, torch.Generator().manual_seed(0))
    median = errors.median(dim=1).values
    assert median[0] > median[1] > median[2]
    assert median[2] < median[0] / 4  # about 1/sqrt(n): 16x fewer errors for 256x more episodes


def test_nl_om_with_dice_is_nl_pg():
    """The DiCE naive gradient never involves the opponent's parameters, so NL-OM equals NL-PG."""
    kw = dict(steps=4, seeds=[1, 2], estimator="dice", batch_size=8, horizon=10)
    plain = train(ipd(), "naive", "naive", **kw)
    modelled = train(ipd(), "naive", "naive", opponent_model=True, **kw)
    assert torch.allclose(plain.theta, modelled.theta, atol=1e-12)
    assert modelled.estimates.shape == (2, 4, 2, 5) and plain.estimates is None


def test_lola_om_with_many_observations_follows_lola():
    kw = dict(steps=1, seeds=[4], estimator="exact", batch_size=4000, horizon=20)
    exact = train(ipd(), "lola", "lola", **kw)
    modelled = train(ipd(), "lola", "lola", opponent_model=True, **kw)
    step_exact = exact.theta[0, 1] - exact.theta[0, 0]
    step_om = modelled.theta[0, 1] - modelled.theta[0, 0]
    assert torch.nn.functional.cosine_similarity(step_exact.flatten(), step_om.flatten(), dim=0) > 0.95
    assert not torch.allclose(step_exact, step_om)  # the estimate is used, not the true parameters


def test_resume_with_opponent_model(tmp_path, monkeypatch):
    import etude.games.training as train_module

    kw = dict(steps=6, seeds=[0, 1], estimator="dice", batch_size=8, horizon=8, checkpoint_every=3, opponent_model=True)
    reference = train(ipd(), "lola", "lola", **kw)
    real, calls = train_module.learner_gradient, {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2 * 4:  # dies during step 5, after the checkpoint at 3
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    ckpt = tmp_path / "om.pt"
    monkeypatch.setattr(train_module, "learner_gradient", dying)
    with pytest.raises(KeyboardInterrupt):
        train(ipd(), "lola", "lola", checkpoint=ckpt, **kw)
    monkeypatch.setattr(train_module, "learner_gradient", real)
    resumed = train(ipd(), "lola", "lola", checkpoint=ckpt, resume=True, **kw)
    assert torch.equal(resumed.theta, reference.theta)
    assert torch.equal(resumed.estimates, reference.estimates)


def test_bad_agent():
    theta = initial_theta([0])
    rollouts = sample_rollouts(ipd(), theta[:, 0], theta[:, 1], 2, 3)
    with pytest.raises(BadInputError, match="agent must be 1 or 2"):
        fit_opponent(rollouts, 0)
