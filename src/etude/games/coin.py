"""The coin game as a batched torch environment.

Foerster et al., "Learning with Opponent-Learning Awareness", AAMAS 2018 (arXiv:1709.04326),
Sec. 5.3: two agents, red (0) and blue (1), move on an n x n torus (n = 3 in the paper); one
coin, red or blue, lies on a cell. An agent that steps onto the coin picks it up and gets +1;
if the coin has the other agent's colour, that other agent gets -2. A new coin then appears.

Fairness (the official `lola/envs/coin_game.py` checks red first, so red alone takes a coin
both agents reach in the same step, and it alternates the coin's colour): here both agents
that arrive together pick the coin up (each +1, and the owner of the colour also pays -2 for
the other's pick), the new coin's colour is a fair coin flip, and its cell is uniform over the
cells no agent stands on. Swapping the agents together with the colours swaps every outcome.

Cells are flat indices c = row * n + col. Actions: 0 right, 1 left, 2 down, 3 up (wrapping).
Observations are egocentric, [batch, 2 agents, 4 channels, n, n]: channel 0 the agent itself,
1 the other agent, 2 a coin of the agent's own colour, 3 a coin of the other's colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = ["CoinGame", "CoinState", "CoinStep", "MOVES"]

MOVES = ((0, 1), (0, -1), (1, 0), (-1, 0))
"""(row, column) displacement of the 4 actions: right, left, down, up."""


@dataclass
class CoinState:
    """Positions of a batch of games: agents [batch, 2] (0 red, 1 blue), coin [batch], colour [batch] (0 red, 1 blue)."""

    agents: torch.Tensor
    coin: torch.Tensor
    colour: torch.Tensor


@dataclass
class CoinStep:
    """Outcome of one step: obs [batch, 2, 4, n, n], rewards [batch, 2], picks [batch, 2, 2].

    picks[b, i, c] is 1 when agent i picked up a coin of colour c in game b.
    """

    obs: torch.Tensor
    rewards: torch.Tensor
    picks: torch.Tensor


class CoinGame:
    """`batch` independent coin games on a `grid` x `grid` torus.

    :param batch: number of games stepped together (positive int).
    :param grid: side of the square grid, >= 2 (the paper uses 3).
    :param device: where the state lives.
    """

    actions = 4
    channels = 4

    def __init__(self, batch: int, grid: int = 3, device: str | torch.device = "cpu") -> None:
        self.batch = check_int("batch", batch, 1)
        self.grid = check_int("grid", grid, 2)
        self.cells = self.grid * self.grid
        self.device = torch.device(device)
        rows, cols = torch.arange(self.cells) // self.grid, torch.arange(self.cells) % self.grid
        moved = [((rows + dr) % self.grid) * self.grid + (cols + dc) % self.grid for dr, dc in MOVES]
        self._move = torch.stack(moved, dim=1).to(self.device)  # [cells, 4]: cell after each action
        self._games = torch.arange(self.batch, device=self.device)
        self.state: CoinState | None = None

    @property
    def obs_dim(self) -> int:
        """Length of one agent's flattened observation, 4 n^2."""
        return self.channels * self.cells

    def reset(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Agents on two distinct uniform cells, a coin of fair random colour on a free cell: obs."""
        u = torch.rand(self.batch, 4, generator=generator, device=self.device)
        first = (u[:, 0] * self.cells).long().clamp(max=self.cells - 1)
        second = (u[:, 1] * (self.cells - 1)).long().clamp(max=self.cells - 2)
        second = second + (second >= first).long()  # uniform over the other cells
        agents = torch.stack([first, second], dim=1)
        self.state = CoinState(agents, self._free_cell(agents, u[:, 2]), (u[:, 3] < 0.5).long())
        return self.observe()

    def _free_cell(self, agents: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """A cell [batch] uniform over those no agent occupies, from uniforms u [batch]."""
        lo, hi = agents.min(dim=1).values, agents.max(dim=1).values
        apart = lo != hi
        free = self.cells - 1 - apart.long()
        cell = (u * free).long().clamp(max=free - 1)  # the k-th free cell, k uniform in [0, free)
        cell = cell + (cell >= lo).long()
        return cell + (apart & (cell >= hi)).long()

    def observe(self) -> torch.Tensor:
        """Egocentric one-hot observations [batch, 2, 4, n, n] of the current state."""
        s = self._require_state()
        n, b = self.cells, self.batch
        obs = torch.zeros(b, 2, 4, n, device=self.device)
        base = self._games * (8 * n)
        own_colour = s.colour == 0  # the coin is agent 0's colour
        # agent 0's view: itself, the other, the coin in channel 2 (own colour) or 3
        idx = torch.cat(
            [
                base + s.agents[:, 0],
                base + n + s.agents[:, 1],
                base + (3 - own_colour.long()) * n + s.coin,
                base + 4 * n + s.agents[:, 1],
                base + 5 * n + s.agents[:, 0],
                base + 4 * n + (2 + own_colour.long()) * n + s.coin,
            ]
        )
        obs.view(-1)[idx] = 1.0
        return obs.view(b, 2, 4, self.grid, self.grid)

    def _require_state(self) -> CoinState:
        if self.state is None:
            raise BadInputError("call reset() before step() or observe()")
        return self.state

    def step(self, actions: torch.Tensor, generator: torch.Generator | None = None) -> CoinStep:
        """Move both agents, pay the picks, respawn picked coins: actions [batch, 2] in {0..3}."""
        s = self._require_state()
        if not isinstance(actions, torch.Tensor) or actions.shape != (self.batch, 2):
            shape = tuple(actions.shape) if isinstance(actions, torch.Tensor) else type(actions).__name__
            raise BadInputError(f"actions must be a tensor of shape ({self.batch}, 2), got {shape}")
        actions = actions.long()
        if (actions & -4).any():  # a bit above the two lowest: outside 0..3
            raise BadInputError(
                f"actions must lie in 0..3 (right, left, down, up), got {actions.min()}..{actions.max()}"
            )
        agents = self._move[s.agents, actions]  # [batch, 2]
        on = agents == s.coin[:, None]  # [batch, 2]: agent i stands on the coin
        picked = on.float()
        mine = torch.nn.functional.one_hot(s.colour, 2).float()  # [batch, 2]: the coin is agent i's colour
        # +1 for every picker; -2 for agent i when the other agent picks i's colour
        rewards = picked - 2.0 * picked.flip(1) * mine
        picks = picked[:, :, None] * mine[:, None, :]  # [batch, agent, colour]
        taken = on.any(dim=1)
        u = torch.rand(self.batch, 2, generator=generator, device=self.device)
        coin = torch.where(taken, self._free_cell(agents, u[:, 0]), s.coin)
        colour = torch.where(taken, (u[:, 1] < 0.5).long(), s.colour)
        self.state = CoinState(agents, coin, colour)
        return CoinStep(self.observe(), rewards, picks)
