"""The coin game: moves, picks, penalties, simultaneous arrival, fair respawn, observation channels."""

import pytest
import torch

from etude.errors import BadInputError
from etude.games.coin import MOVES, CoinGame, CoinState


def place(game: CoinGame, agents, coin, colour) -> None:
    game.state = CoinState(torch.tensor(agents).view(-1, 2), torch.tensor(coin).view(-1), torch.tensor(colour).view(-1))


def cell(r, c, n=3):
    return (r % n) * n + (c % n)


@pytest.mark.parametrize("grid", [2, 3, 5])
def test_moves_wrap_around_the_torus(grid):
    cells = grid * grid
    game = CoinGame(cells * 4, grid)
    starts = torch.arange(cells).repeat_interleave(4)
    acts = torch.arange(4).repeat(cells)
    # agent 1 mirrors agent 0; the coin sits on a cell nobody can reach this step only for grid >= 3,
    # so rewards are ignored here: only the new positions are checked
    place(game, torch.stack([starts, starts], 1).tolist(), [0] * (cells * 4), [0] * (cells * 4))
    game.step(torch.stack([acts, acts], 1))
    for k, (s, a) in enumerate(zip(starts.tolist(), acts.tolist())):
        r, c = divmod(s, grid)
        dr, dc = MOVES[a]
        assert game.state.agents[k].tolist() == [((r + dr) % grid) * grid + (c + dc) % grid] * 2


# (agent 0 cell, action 0), (agent 1 cell, action 1), coin cell, colour -> rewards, picks
CASES = [
    # red steps right onto a red coin: +1 for red, nothing for blue
    ((cell(0, 0), 0), (cell(2, 2), 1), cell(0, 1), 0, (1.0, 0.0), {(0, 0)}),
    # red picks the blue coin: +1 red, -2 blue
    ((cell(0, 0), 0), (cell(2, 2), 1), cell(0, 1), 1, (1.0, -2.0), {(0, 1)}),
    # blue picks the red coin: -2 red, +1 blue
    ((cell(0, 0), 1), (cell(2, 0), 2), cell(0, 0), 0, (-2.0, 1.0), {(1, 0)}),
    # blue picks its own coin (moving up across the edge)
    ((cell(1, 1), 0), (cell(0, 2), 3), cell(2, 2), 1, (0.0, 1.0), {(1, 1)}),
    # nobody reaches the coin
    ((cell(0, 0), 0), (cell(2, 2), 1), cell(1, 1), 0, (0.0, 0.0), set()),
    # both arrive on a red coin: both +1, red also pays -2 for blue's pick
    ((cell(1, 0), 0), (cell(1, 2), 1), cell(1, 1), 0, (-1.0, 1.0), {(0, 0), (1, 0)}),
    # both arrive on a blue coin: the mirror image
    ((cell(1, 0), 0), (cell(1, 2), 1), cell(1, 1), 1, (1.0, -1.0), {(0, 1), (1, 1)}),
]


@pytest.mark.parametrize("red, blue, coin, colour, rewards, picks", CASES)
def test_pick_rules(red, blue, coin, colour, rewards, picks):
    game = CoinGame(1)
    place(game, [red[0], blue[0]], coin, colour)
    out = game.step(torch.tensor([[red[1], blue[1]]]), torch.Generator().manual_seed(0))
    assert out.rewards[0].tolist() == list(rewards)
    got = {(i, c) for i in range(2) for c in range(2) if out.picks[0, i, c] == 1}
    assert got == picks and int(out.picks.sum()) == len(picks)
    if picks:  # a new coin, off both agents
        assert int(game.state.coin) not in game.state.agents[0].tolist()
    else:  # the coin stays where it was, with its colour
        assert int(game.state.coin) == coin and int(game.state.colour) == colour


def mirror(state: CoinState) -> CoinState:
    return CoinState(state.agents.flip(1).clone(), state.coin.clone(), 1 - state.colour)


def random_state(n, grid, g):
    cells = grid * grid
    agents = torch.randint(cells, (n, 2), generator=g)  # agents may share a cell later in a game
    coin = torch.randint(cells, (n,), generator=g)
    return CoinState(agents, coin, torch.randint(2, (n,), generator=g))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_swapping_agents_and_colours_swaps_every_outcome(seed):
    g = torch.Generator().manual_seed(seed)
    n = 5000
    state = random_state(n, 3, g)
    actions = torch.randint(4, (n, 2), generator=g)
    a, b = CoinGame(n), CoinGame(n)
    a.state, b.state = state, mirror(state)
    out_a = a.step(actions, torch.Generator().manual_seed(9))
    out_b = b.step(actions.flip(1), torch.Generator().manual_seed(9))
    assert torch.equal(out_a.rewards, out_b.rewards.flip(1))
    assert torch.equal(out_a.picks, out_b.picks.flip(1).flip(2))
    assert torch.equal(a.state.agents, b.state.agents.flip(1))
    # respawned coins share the random draws, so they land on the same cell; their colours are a
    # fresh fair flip (the same draw in both games), so the views swap exactly where no coin was taken
    kept = out_a.picks.flatten(1).sum(1) == 0
    assert torch.equal(a.state.coin, b.state.coin)
    assert torch.equal(a.state.colour[kept], 1 - b.state.colour[kept])
    assert torch.equal(out_a.obs[kept], out_b.obs[kept].flip(1))  # egocentric views swap
    assert torch.equal(out_a.obs[~kept, :, :2], out_b.obs[~kept, :, :2].flip(1))
    assert out_a.picks.sum() > 100  # many picks happened, so the check covered them


@pytest.mark.parametrize("grid", [2, 3, 4])
def test_respawn_never_under_an_agent_and_uniform(grid):
    n, cells = 40000, grid * grid
    game = CoinGame(n, grid)
    g = torch.Generator().manual_seed(grid)
    game.reset(g)
    # force a pick everywhere: put the coin where agent 0 goes, agent 1 on a fixed cell or the same one
    agents = torch.zeros(n, 2, dtype=torch.long)
    agents[: n // 2, 1] = cells - 1  # apart
    game.state = CoinState(agents, game._move[agents[:, 0], 0].clone(), torch.zeros(n, dtype=torch.long))
    actions = torch.zeros(n, 2, dtype=torch.long)
    actions[n // 2 :, 1] = 0  # the second half: both walk onto the coin together
    game.step(actions, g)
    coin, pos = game.state.coin, game.state.agents
    assert not (coin[:, None] == pos).any()
    for half, occupied in ((slice(0, n // 2), 2), (slice(n // 2, n), 1)):
        counts = torch.bincount(coin[half], minlength=cells).double()
        expected = (n // 2) / (cells - occupied)
        free = counts > 0
        assert int(free.sum()) == cells - occupied
        assert ((counts[free] - expected).abs() < 5 * expected**0.5).all(), counts
    share_red = float((game.state.colour == 0).double().mean())
    assert abs(share_red - 0.5) < 5 * (0.25 / n) ** 0.5


def test_reset_places_agents_apart_and_the_coin_free():
    n = 30000
    game = CoinGame(n)
    obs = game.reset(torch.Generator().manual_seed(0))
    s = game.state
    assert (s.agents[:, 0] != s.agents[:, 1]).all()
    assert not (s.coin[:, None] == s.agents).any()
    pairs = torch.bincount(s.agents[:, 0] * 9 + s.agents[:, 1], minlength=81).double()
    assert int((pairs > 0).sum()) == 72  # every ordered pair of distinct cells occurs
    assert abs(float((s.colour == 0).double().mean()) - 0.5) < 0.02
    assert obs.shape == (n, 2, 4, 3, 3)


def test_observation_channels():
    game = CoinGame(2)
    place(game, [[cell(0, 1), cell(2, 0)], [cell(1, 1), cell(1, 1)]], [cell(2, 2), cell(0, 0)], [0, 1])
    obs = game.observe().flatten(3)  # [2, 2 agents, 4, 9]
    assert obs[:, :, :2].sum(-1).eq(1).all()  # each agent is seen once
    assert obs[:, :, 2:].sum(dim=(-1, -2)).eq(1).all()  # one coin, in channel 2 or 3
    # game 0, red coin: red sees the coin as its own (channel 2), blue as the other's (channel 3)
    assert obs[0, 0, 0].argmax() == cell(0, 1) and obs[0, 0, 1].argmax() == cell(2, 0)
    assert obs[0, 0, 2].argmax() == cell(2, 2) and obs[0, 0, 3].sum() == 0
    assert obs[0, 1, 0].argmax() == cell(2, 0) and obs[0, 1, 1].argmax() == cell(0, 1)
    assert obs[0, 1, 3].argmax() == cell(2, 2) and obs[0, 1, 2].sum() == 0
    # game 1, blue coin, agents on one cell
    assert obs[1, 0, 3].argmax() == cell(0, 0) and obs[1, 1, 2].argmax() == cell(0, 0)
    assert obs[1, 0, 0].argmax() == obs[1, 0, 1].argmax() == cell(1, 1)
    assert obs[1, :, 2:].sum() == 2


def test_random_play_is_fair_to_both_agents():
    n, steps = 4096, 60
    game = CoinGame(n)
    g = torch.Generator().manual_seed(1)
    game.reset(g)
    total = torch.zeros(2, dtype=torch.float64)
    picks = torch.zeros(2, 2, dtype=torch.float64)
    per_game = torch.zeros(n, 2, dtype=torch.float64)
    for _ in range(steps):
        out = game.step(torch.randint(4, (n, 2), generator=g), g)
        per_game += out.rewards
        picks += out.picks.sum(0)
    total = per_game.mean(0)
    se = (per_game[:, 0] - per_game[:, 1]).std() / n**0.5
    assert abs(float(total[0] - total[1])) < 4 * float(se)
    count_red, count_blue = picks[0].sum(), picks[1].sum()
    assert abs(float(count_red - count_blue)) < 4 * float((count_red + count_blue) ** 0.5)
    assert picks.sum() > 0.1 * n * steps  # coins are picked often enough for the test to have power


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch=0), "batch must be an int >= 1"),
        (dict(batch=-3), "batch"),
        (dict(batch=2.5), "batch"),
        (dict(batch=4, grid=1), "grid must be an int >= 2"),
        (dict(batch=4, grid="3"), "grid"),
        (dict(batch=True), "batch"),
    ],
)
def test_bad_sizes(kwargs, match):
    with pytest.raises(BadInputError, match=match):
        CoinGame(**kwargs)


def test_bad_actions_and_step_before_reset():
    game = CoinGame(3)
    with pytest.raises(BadInputError, match="reset"):
        game.step(torch.zeros(3, 2, dtype=torch.long))
    game.reset()
    with pytest.raises(BadInputError, match=r"shape \(3, 2\)"):
        game.step(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(BadInputError, match=r"0\.\.3"):
        game.step(torch.full((3, 2), 4))
    with pytest.raises(BadInputError, match=r"0\.\.3"):
        game.step(torch.full((3, 2), -1))
