"""Coin-game policies and learners: batched MLP, last-pick memory, DiCE against an enumerated oracle, training."""

import itertools

import pytest
import torch

import etude.games.coin_training as coin_training
from etude.errors import BadInputError
from etude.games.coin import CoinGame, CoinState
from etude.games.coin_policy import MLPPolicy, pick_memory
from etude.games.coin_training import CoinDiceValues, coin_outcomes, play_coin, train_coin
from etude.games.learners import naive_gradient


def test_batched_policy_equals_a_per_seed_mlp():
    policy = MLPPolicy(36, hidden=8, memory=True)
    theta = policy.init([0, 1, 2])[:, 0].double()
    x = torch.randn(3, 5, 7, 40, dtype=torch.float64)
    got = policy.log_probs(theta, x)
    d, h = 40, 8
    for s in range(3):
        w1, b1, w2, b2 = torch.split(theta[s], [d * h, h, h * 4, 4])
        logits = torch.relu(x[s] @ w1.view(d, h) + b1) @ w2.view(h, 4) + b2
        assert torch.allclose(got[s], torch.log_softmax(logits, -1), atol=1e-12)
    assert torch.allclose(got.exp().sum(-1), torch.ones(3, 5, 7, dtype=torch.float64))


def test_pick_memory_keeps_the_last_event_from_each_side():
    none = torch.zeros(1, 2, 2)
    red_takes_blue = torch.zeros(1, 2, 2)
    red_takes_blue[0, 0, 1] = 1
    both_on_red = torch.zeros(1, 2, 2)
    both_on_red[0, :, 0] = 1
    m = torch.zeros(1, 2, 4)
    m = pick_memory(m, red_takes_blue)
    # red: "I picked the other's colour"; blue: "the other picked mine"
    assert m[0, 0].tolist() == [0, 1, 0, 0] and m[0, 1].tolist() == [0, 0, 0, 1]
    assert torch.equal(pick_memory(m, none), m)  # kept until the next pick
    m = pick_memory(m, both_on_red)
    assert m[0, 0].tolist() == [1, 0, 0, 1] and m[0, 1].tolist() == [0, 1, 1, 0]


def enumerated_values(policy: MLPPolicy, grid: int = 2, gamma: float = 0.96):
    """Exact two-step (V1, V2) [seeds]: every reset state, joint action, respawned coin and second action."""
    cells = grid * grid
    joint = torch.tensor(list(itertools.product(range(4), range(4))))
    starts = [
        (a, b, c, col)
        for a in range(cells)
        for b in range(cells)
        for c in range(cells)
        for col in range(2)
        if a != b and c not in (a, b)
    ]
    n0 = len(starts)
    game = CoinGame(n0 * 16, grid)
    st = torch.tensor(starts).repeat_interleave(16, dim=0)
    game.state = CoinState(st[:, :2].clone(), st[:, 2].clone(), st[:, 3].clone())
    x0 = policy.inputs(game.observe(), torch.zeros(n0 * 16, 2, 4)).view(n0, 16, 2, -1)[:, 0].double()
    first = game.step(joint.repeat(n0, 1))
    r1 = first.rewards.view(n0, 16, 2).double()
    memory = pick_memory(torch.zeros(n0 * 16, 2, 4), first.picks)
    agents, coin, colour = game.state.agents, game.state.coin, game.state.colour
    branches, parent, weight = [], [], []  # second-step states after every possible respawn
    for k in range(n0 * 16):
        if first.picks[k].sum() == 0:
            options = [(int(coin[k]), int(colour[k]), 1.0)]
        else:
            free = [c for c in range(cells) if c not in agents[k].tolist()]
            options = [(c, col, 1.0 / (2 * len(free))) for c in free for col in range(2)]
        for c, col, w in options:
            branches.append((*agents[k].tolist(), c, col))
            parent.append(k)
            weight.append(w)
    nb = len(branches)
    game2 = CoinGame(nb * 16, grid)
    bt = torch.tensor(branches).repeat_interleave(16, dim=0)
    game2.state = CoinState(bt[:, :2].clone(), bt[:, 2].clone(), bt[:, 3].clone())
    mem = memory[torch.tensor(parent)].repeat_interleave(16, dim=0)
    x1 = policy.inputs(game2.observe(), mem).view(nb, 16, 2, -1)[:, 0].double()
    r2 = game2.step(joint.repeat(nb, 1)).rewards.view(nb, 16, 2).double()
    parent_t, weight_t = torch.tensor(parent), torch.tensor(weight, dtype=torch.float64)

    def joint_probs(theta1, theta2, x):
        seeds = theta1.shape[0]
        p1 = policy.log_probs(theta1, x[None, :, 0].expand(seeds, -1, -1)).exp()  # [seeds, m, 4]
        p2 = policy.log_probs(theta2, x[None, :, 1].expand(seeds, -1, -1)).exp()
        return (p1[..., :, None] * p2[..., None, :]).flatten(-2)  # [seeds, m, 16] in the order of `joint`

    def values(theta1, theta2):
        later = (joint_probs(theta1, theta2, x1)[..., None] * r2).sum(2) * weight_t[:, None]  # [seeds, nb, 2]
        cont = torch.zeros(theta1.shape[0], n0 * 16, 2, dtype=later.dtype).index_add(1, parent_t, later)
        total = r1 + gamma * cont.view(-1, n0, 16, 2)
        v = (joint_probs(theta1, theta2, x0)[..., None] * total).sum(2).mean(1)  # [seeds, 2]
        return v[:, 0], v[:, 1]

    return values


def first_order(values, t1, t2):
    """grad_1 V1 [seeds, P]."""
    return naive_gradient(values, t1, t2, 1.0)


def mixed_second_order(values, t1, t2, direction):
    """grad_1 (direction^T grad_2 V2) [seeds, P]: the second-order term LOLA contracts with grad_2 V1."""
    t1, t2 = t1.detach().requires_grad_(True), t2.detach().requires_grad_(True)
    _, v2 = values(t1, t2)
    (g2,) = torch.autograd.grad(v2.sum(), t2, create_graph=True)
    (h,) = torch.autograd.grad((g2 * direction).sum(), t1)
    return h


@pytest.mark.parametrize("order", ["first", "mixed"])
def test_coin_dice_derivatives_are_unbiased_against_enumeration(order):
    """Mean of 200 DiCE estimates (two-step 2x2 games, 512 each) equals the enumerated exact derivative within 5 SE.

    Each order is a linear function of one DiCE estimate, hence unbiased; LOLA's product of two
    estimates from the same rollouts is not (its bias falls as 1/batch).
    """
    policy, replicas = MLPPolicy(16, hidden=3), 200
    d, h = policy.input_dim, policy.hidden
    base = policy.init([4]).double()
    base[0, :, d * h + h : d * h + h + h * 4] *= 30.0  # a strongly state-dependent policy
    base[0, :, -4:] = torch.tensor([0.8, -0.5, 0.1, -0.3], dtype=torch.float64)
    t1, t2 = base[:, 0].expand(replicas, -1).clone(), base[:, 1].expand(replicas, -1).clone()
    rollouts = play_coin(policy, t1, t2, 512, 2, grid=2, generator=torch.Generator().manual_seed(0))
    dice, exact = CoinDiceValues(policy, rollouts, 0.96), enumerated_values(policy)
    if order == "first":
        estimates, expected = first_order(dice, t1, t2), first_order(exact, t1[:1], t2[:1])[0]
    else:
        direction = torch.randn(policy.size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        estimates = mixed_second_order(dice, t1, t2, direction)
        expected = mixed_second_order(exact, t1[:1], t2[:1], direction)[0]
    z = (estimates.mean(0) - expected) / (estimates.std(0) / replicas**0.5 + 1e-12)
    assert z.abs().max() < 5.0, z.abs().max()
    assert (estimates.mean(0) - expected).norm() < 0.5 * expected.norm()
    assert expected.norm() > 1e-3


def test_outcomes_count_own_colour_picks():
    picks = torch.zeros(1, 1, 4, 2, 2)
    picks[0, 0, 0, 0, 0] = 1  # red takes red
    picks[0, 0, 1, 1, 1] = 1  # blue takes blue
    picks[0, 0, 2, 0, 1] = 1  # red takes blue
    rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -2.0], [0.0, 0.0]]).view(1, 1, 4, 2)
    rollouts = coin_training.CoinRollouts(
        torch.zeros(1, 1, 4, 2, 40), torch.zeros(1, 1, 4, 2, dtype=torch.long), rewards, picks
    )
    out = coin_outcomes(rollouts)
    assert out["own_share"].tolist() == pytest.approx([2 / 3])
    assert out["reward"].tolist() == pytest.approx([1.0 / 8])
    assert out["picks_per_step"].tolist() == pytest.approx([3 / 4])


def test_first_actions_follow_the_policy():
    policy = MLPPolicy(36, hidden=4, memory=False)
    theta = policy.init([1])
    theta[0, :, -4:] = torch.tensor([2.0, 0.0, -1.0, 0.5])
    rollouts = play_coin(policy, theta[:, 0], theta[:, 1], 20000, 1, generator=torch.Generator().manual_seed(3))
    logp = policy.log_probs(theta[:, 0], rollouts.inputs[:, :, 0, 0])  # [1, 20000, 4]
    expected = logp.exp().mean(1)[0]
    freq = torch.bincount(rollouts.actions[0, :, 0, 0], minlength=4).float() / 20000
    assert torch.allclose(freq, expected, atol=4 * (0.25 / 20000) ** 0.5)


def test_same_seeds_same_run_and_seed_independent_init():
    kw = dict(steps=3, seeds=[2, 5], episodes=4, horizon=6, hidden=4)
    a, b = train_coin("lola", "naive", **kw), train_coin("lola", "naive", **kw)
    assert torch.equal(a.theta, b.theta)
    for k in a.curves:
        assert torch.equal(a.curves[k], b.curves[k])
    assert not torch.equal(a.theta[0], a.theta[1])


def test_resume_after_a_kill_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    kw = dict(steps=6, seeds=[0, 1], episodes=4, horizon=5, hidden=4, checkpoint_every=2)
    reference = train_coin("lola", "lola", **kw)
    calls = {"n": 0}
    real = coin_training.learner_gradient

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2 * 5:  # dies during step 6, after the checkpoint at 4
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    ckpt = tmp_path / "coin.pt"
    monkeypatch.setattr(coin_training, "learner_gradient", dying)
    with pytest.raises(KeyboardInterrupt):
        train_coin("lola", "lola", checkpoint=ckpt, **kw)
    monkeypatch.setattr(coin_training, "learner_gradient", real)
    resumed = train_coin("lola", "lola", checkpoint=ckpt, resume=True, **kw)
    assert torch.allclose(resumed.theta, reference.theta, atol=1e-6)
    assert torch.allclose(resumed.final["own_share"], reference.final["own_share"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(learner1="lookahead"), "unknown coin-game learner"),
        (dict(grid=1), "grid"),
        (dict(episodes=0), "episodes"),
        (dict(horizon=-1), "horizon"),
        (dict(lr=0.0), "lr"),
        (dict(gamma=1.0), "gamma"),
        (dict(seeds=0), "seeds"),
    ],
)
def test_bad_training_arguments(kwargs, match):
    args = dict(learner1="naive", learner2="naive", steps=1, seeds=1, episodes=2, horizon=2, hidden=2)
    args.update(kwargs)
    with pytest.raises(BadInputError, match=match):
        train_coin(**args)


@pytest.mark.parametrize(
    "args, words",
    [
        (["games", "coin", "--grid", "1"], ["grid must be an int >= 2", "1"]),
        (["games", "coin", "--batch", "0"], ["--batch", "positive", "0"]),
        (["games", "coin", "--batch", "-4"], ["--batch", "-4"]),
        (["games", "tournament", "--game", "chess"], ["--game", "'chess'"]),
        (["games", "coin", "--learners", "sos"], ["--learners", "'sos'"]),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(capsys, args, words):
    from etude.cli import main

    try:
        status = main(args)
    except SystemExit as exc:  # argparse's own errors exit from inside main
        status = exc.code
    assert status == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("etude: error: ")
    assert all(w in err for w in words), err


def test_cli_coin_prints_a_row_per_learner(capsys):
    from etude.cli import main

    assert (
        main(["games", "coin", "--steps", "1", "--seeds", "2", "--batch", "4", "--horizon", "5", "--hidden", "4"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith("| naive vs naive | ") and out[3].startswith("| lola vs lola | ") and len(out) == 4
