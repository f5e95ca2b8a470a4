"""Base samplers for reparameterized estimators: Monte Carlo, Sobol QMC and randomized QMC.

Buchholz, Wenzel, Mandt, "Quasi-Monte Carlo Variational Inference", ICML 2018
(arXiv:1807.01604), Sec. 2-3: replace the N iid uniforms u_1..u_N of a Monte Carlo estimator
by a (randomized) low-discrepancy point set and map them to standard normals with the inverse
CDF, eps = Phi^{-1}(u). For smooth integrands the RQMC error is O(N^{-1} (log N)^{d-1}) against
MC's O(N^{-1/2}).

Every sampler has the same interface: ``.uniform(n)`` -> [n, dim] in (0, 1) and
``.normal(n)`` -> [n, dim] standard normals by the inverse CDF (computed in float64, then cast).

* ``MC``: iid uniforms from a seeded generator.
* ``QMC``: the unscrambled Sobol sequence; every call returns the *same* first n points (a fixed
  cubature rule, hence biased). Its first point is the origin, whose inverse CDF is infinite:
  uniforms are clamped to (eps, 1 - eps), so that point maps to Phi^{-1}(eps) (about -6.4).
* ``RQMC``: scrambled Sobol points (a random linear matrix scramble of torch's Sobol direction
  numbers plus a random digital shift, vectorized here: it keeps the net structure and makes
  every point uniform on the cube, so estimates are unbiased; the paper uses Owen's nested
  scrambling, and Owen (2003, "Variance with alternative scramblings of digital nets") shows the
  linear matrix scramble has the same variance).
  ``randomization="scramble"`` draws a fresh scramble per call; ``"shift"`` keeps one scramble
  and draws only a fresh random digital shift per call (cheaper at large dim).

Sobol points are balanced only for N a power of two; other N raise ``QMCBalanceWarning``.
"""

from __future__ import annotations

import functools
import math

import torch
from torch.quasirandom import SobolEngine

from etude.errors import BadInputError, EtudeWarning, warn_at_caller
from etude.validation import check_int

__all__ = [
    "EPS",
    "MAX_DIM",
    "SAMPLERS",
    "BaseSampler",
    "MC",
    "QMC",
    "RQMC",
    "QMCBalanceWarning",
    "linear_scramble",
    "make_sampler",
    "is_power_of_two",
    "sobol_points",
    "SOBOL_BITS",
    "sobol_levels",
    "sobol_net",
]

EPS = 1e-10
"""Default clamp of uniforms to (EPS, 1 - EPS) before the inverse normal CDF: Phi^{-1}(EPS) ~ -6.36."""
MAX_DIM = SobolEngine.MAXDIM
"""Largest dimension torch's Sobol engine supports (21201)."""
SOBOL_BITS = SobolEngine.MAXBIT
"""Sobol points are integers / 2**SOBOL_BITS (30 bits)."""
SAMPLERS = ("mc", "qmc", "rqmc")
RANDOMIZATIONS = ("scramble", "shift")


class QMCBalanceWarning(EtudeWarning):
    """N is not a power of two, so the Sobol point set loses its balance (net) property."""


def is_power_of_two(n: int) -> bool:
    """True for 1, 2, 4, 8, ..."""
    return n > 0 and n & (n - 1) == 0


def _check_seed(seed: object) -> int | None:
    if seed is None:
        return None
    return check_int("seed", seed, 0, 2**63 - 1)


class BaseSampler:
    """The interface every base sampler implements: ``uniform(n)`` and ``normal(n)``.

    :param dim: d, the number of coordinates of each point.
    :param eps: uniforms are clamped to (eps, 1 - eps) so the inverse CDF stays finite.
    """

    kind: str = ""

    max_dim: int | None = MAX_DIM
    """Largest supported dim (None: no limit); Sobol-based samplers are limited by torch's engine."""

    def __init__(self, dim: int, eps: float = EPS) -> None:
        self.dim = check_int("dim", dim, 1, self.max_dim)
        if not isinstance(eps, float) or not 0.0 < eps < 0.5:
            raise BadInputError(f"eps must be a float in (0, 0.5), got {eps!r}")
        self.eps = eps

    def _points(self, n: int) -> torch.Tensor:
        """n points in [0, 1)^dim, float64 [n, dim]; subclasses implement this."""
        raise NotImplementedError

    def uniform(self, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """u [n, dim] in (eps, 1 - eps): the sampler's n base points."""
        check_int("n", n, 1)
        u = self._points(n).clamp_(self.eps, 1.0 - self.eps)
        if dtype == torch.float64:
            return u
        low, high = torch.tensor(self.eps, dtype=dtype), torch.tensor(1.0 - self.eps, dtype=dtype)
        if float(low) < self.eps:  # rounding may leave the open interval (1 - 1e-10 is 1.0 in float32)
            low = torch.nextafter(low, torch.tensor(1.0, dtype=dtype))
        if float(high) > 1.0 - self.eps:
            high = torch.nextafter(high, torch.tensor(0.0, dtype=dtype))
        return u.to(dtype).clamp_(low, high)

    def normal(self, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """eps [n, dim] = Phi^{-1}(u) = sqrt(2) erfinv(2u - 1), computed in float64."""
        eps = torch.erfinv(2.0 * self.uniform(n) - 1.0).mul_(math.sqrt(2.0))  # 3x faster than special.ndtri
        return eps if dtype == torch.float64 else eps.to(dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class MC(BaseSampler):
    """iid uniform base points from a generator seeded with ``seed`` (``None``: a random seed)."""

    kind = "mc"
    max_dim = None  # iid uniforms need no Sobol direction numbers

    def __init__(self, dim: int, seed: int | None = None, eps: float = EPS) -> None:
        super().__init__(dim, eps)
        self.generator = torch.Generator()
        seed = _check_seed(seed)
        self.generator.manual_seed(seed) if seed is not None else self.generator.seed()

    def _points(self, n: int) -> torch.Tensor:
        return torch.rand(n, self.dim, generator=self.generator, dtype=torch.float64)


def _warn_balance(n: int, kind: str) -> None:
    if not is_power_of_two(n):
        warn_at_caller(
            f"{kind} with n={n} points: Sobol point sets are balanced only for n a power of two "
            f"(nearest: {2 ** max(0, round(math.log2(n)))}); the variance reduction shrinks",
            QMCBalanceWarning,
        )


class QMC(BaseSampler):
    """The first n points of the unscrambled Sobol sequence, the same on every call (deterministic)."""

    kind = "qmc"

    def __init__(self, dim: int, eps: float = EPS) -> None:
        super().__init__(dim, eps)
        self._engine = SobolEngine(self.dim, scramble=False)

    def _points(self, n: int) -> torch.Tensor:
        _warn_balance(n, "QMC")
        return self._engine.reset().draw(n, dtype=torch.float64)  # torch's own Sobol generator


_PLACE = (SOBOL_BITS - 1 - torch.arange(SOBOL_BITS)).int()  # bit position of the r-th binary digit after the point
_ABOVE = (2**SOBOL_BITS - 1) ^ ((2 << _PLACE) - 1)  # per digit r: the bits of digits s < r
_DIAGONAL = 1 << _PLACE  # per digit r: its own bit
# 30-bit digits fit int32, whose bit operations run about 2.5x faster than int64's on CPU


def _parity(words: torch.Tensor) -> torch.Tensor:
    """Parity (0 or 1) of the set bits of each non-negative int32, by XOR folding."""
    for step in (16, 8, 4, 2, 1):
        words = words ^ (words >> step)
    return words & 1


def linear_scramble(directions: torch.Tensor, generator: torch.Generator, columns: int = SOBOL_BITS) -> torch.Tensor:
    """Matousek's random linear scramble of Sobol direction numbers: c_k -> L c_k over GF(2).

    :param directions: [dim, 30] int64 or int32, column k holds the k-th direction number's 30 binary digits
        (the first digit after the binary point in bit 29), as in ``SobolEngine.sobolstate``.
    :param columns: scramble only the first ``columns`` direction numbers (2**columns points need
        no more than these).
    :returns: [dim, columns] int32, the direction numbers multiplied by a random lower-triangular
        binary matrix L with unit diagonal, one L per dimension: digit r of a point becomes
        sum_{s <= r} L[r, s] x_s mod 2, so the point set stays a (t, m, d)-net.
    """
    dim = directions.shape[0]
    # row r of L as a 30-bit word: random bits for digits s < r, the diagonal bit for digit r
    rows = (
        torch.randint(0, 2**SOBOL_BITS, (dim, 1, SOBOL_BITS), generator=generator, dtype=torch.int32) & _ABOVE
        | _DIAGONAL
    )
    mixed = _parity(rows & directions[:, :columns, None].int())  # [dim, k, r]: digit r of L c_k
    return (mixed << _PLACE).sum(-1, dtype=torch.int32)


def sobol_levels(n: int) -> int:
    """m = ceil(log2 n): the number of direction numbers the first n Sobol points use."""
    return max(0, (n - 1).bit_length())


@functools.lru_cache(maxsize=64)
def _gray_order(n: int) -> torch.Tensor:
    """gray(i) = i ^ (i >> 1) for i < n: the natural index of the sequence's i-th point."""
    index = torch.arange(n)
    return index ^ (index >> 1)


def sobol_net(directions: torch.Tensor, n: int, shift: torch.Tensor | None = None) -> torch.Tensor:
    """The first n Sobol points as 30-bit integers [n, dim] from these direction numbers, XOR ``shift``."""
    points = torch.zeros(1, directions.shape[0], dtype=directions.dtype) if shift is None else shift[None, :]
    for b in range(sobol_levels(n)):  # all 2**levels XOR-combinations, in natural index order
        points = torch.cat([points, points ^ directions[:, b]])
    return points[_gray_order(n)]


def sobol_points(directions: torch.Tensor, n: int, shift: torch.Tensor | None = None) -> torch.Tensor:
    """The first n points [n, dim] (float64 in [0, 1)) of the Sobol sequence with these direction numbers.

    Point i is the XOR of the direction numbers selected by the bits of gray(i) = i ^ (i >> 1),
    then XOR ``shift`` ([dim] 30-bit ints, a digital shift), divided by 2**30.
    """
    return sobol_net(directions, n, shift).double() * 2.0**-SOBOL_BITS


class RQMC(BaseSampler):
    """Scrambled Sobol points, independently re-randomized on every call.

    Each randomization is a random linear (matrix) scramble of the direction numbers plus a
    random digital shift: every point is then uniform on the cube (unbiased estimates) and the
    point set keeps its net structure (Owen 1997; Matousek 1998).

    :param dim: d.
    :param seed: seeds the generator that draws every randomization (``None``: a random seed);
        the same seed gives the same sequence of point sets.
    :param randomization: ``"scramble"`` (a fresh scramble and digital shift per call) or
        ``"shift"`` (one scramble for the sampler's life, a fresh random digital shift per call).
    """

    kind = "rqmc"

    def __init__(self, dim: int, seed: int | None = None, randomization: str = "scramble", eps: float = EPS) -> None:
        super().__init__(dim, eps)
        if randomization not in RANDOMIZATIONS:
            raise BadInputError(f"randomization must be one of {RANDOMIZATIONS}, got {randomization!r}")
        self.randomization = randomization
        self.generator = torch.Generator()
        seed = _check_seed(seed)
        self.generator.manual_seed(seed) if seed is not None else self.generator.seed()
        self.directions = SobolEngine(self.dim).sobolstate.int()  # [dim, 30] direction numbers
        self._scrambled: torch.Tensor | None = None
        self._nets: dict[int, torch.Tensor] = {}

    def _points(self, n: int) -> torch.Tensor:
        _warn_balance(n, "RQMC")
        shift = torch.randint(0, 2**SOBOL_BITS, (self.dim,), generator=self.generator, dtype=torch.int32)
        if self.randomization == "scramble":  # scramble only the direction numbers n points use
            return sobol_points(linear_scramble(self.directions, self.generator, sobol_levels(n)), n, shift)
        if self._scrambled is None:  # one scramble; its point set is kept for the last n
            self._scrambled = linear_scramble(self.directions, self.generator)
        if n not in self._nets:
            self._nets = {n: sobol_net(self._scrambled, n)}
        return (self._nets[n] ^ shift).double() * 2.0**-SOBOL_BITS

    def __repr__(self) -> str:
        return f"RQMC(dim={self.dim}, randomization={self.randomization!r})"


def make_sampler(kind: str, dim: int, seed: int | None = None, **kwargs: object) -> BaseSampler:
    """The sampler named ``kind`` ('mc', 'qmc' or 'rqmc'); ``seed`` is ignored by the deterministic 'qmc'."""
    if kind == "mc":
        return MC(dim, seed=seed, **kwargs)  # type: ignore[arg-type]
    if kind == "qmc":
        return QMC(dim, **kwargs)  # type: ignore[arg-type]
    if kind == "rqmc":
        return RQMC(dim, seed=seed, **kwargs)  # type: ignore[arg-type]
    raise BadInputError(f"sampler kind must be one of {SAMPLERS}, got {kind!r}")
