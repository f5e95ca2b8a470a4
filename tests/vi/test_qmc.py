"""Base samplers: the Sobol construction, net structure of RQMC, unbiasedness, error rates, seeds, errors."""

import math
import warnings

import pytest
import torch
from torch.quasirandom import SobolEngine

from etude.errors import BadInputError, EtudeWarning
from etude.vi import MC, QMC, RQMC, QMCBalanceWarning, linear_scramble, make_sampler, sobol_points
from etude.vi.qmc import EPS


def _samplers(dim, seed=0):
    return [MC(dim, seed=seed), QMC(dim), RQMC(dim, seed=seed), RQMC(dim, seed=seed, randomization="shift")]


@pytest.mark.parametrize("index", range(4))
def test_points_lie_in_the_open_cube_and_normals_are_the_inverse_cdf(index):
    sampler = _samplers(5)[index]
    u = sampler.uniform(32)
    assert u.shape == (32, 5) and u.dtype == torch.float64
    assert bool((u >= EPS).all() and (u <= 1 - EPS).all())
    eps = sampler.normal(32, dtype=torch.float32)
    assert eps.shape == (32, 5) and eps.dtype == torch.float32 and bool(torch.isfinite(eps).all())


def test_normal_is_the_inverse_cdf_of_the_same_points():
    u, eps = RQMC(4, seed=3).uniform(16), RQMC(4, seed=3).normal(16)
    assert torch.allclose(eps, torch.distributions.Normal(0.0, 1.0).icdf(u), atol=1e-9)


def test_qmc_is_torch_sobol_with_the_origin_clamped_and_the_same_every_call():
    q = QMC(3)
    expected = SobolEngine(3).draw(8, dtype=torch.float64).clamp(EPS, 1 - EPS)
    assert torch.equal(q.uniform(8), expected) and torch.equal(q.uniform(8), expected)
    corner = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(EPS, dtype=torch.float64)).item()  # about -6.36
    assert torch.allclose(q.normal(1), torch.full((1, 3), corner, dtype=torch.float64), atol=1e-7) and corner < -6


@pytest.mark.parametrize("n", [1, 2, 5, 16, 37])
def test_own_sobol_generator_matches_torch_engine(n):
    directions = SobolEngine(7).sobolstate
    assert torch.equal(sobol_points(directions, n), SobolEngine(7).draw(n, dtype=torch.float64))


def _one_point_per_box(u, bits_x, bits_y=None):
    """True when every dyadic box of the 2**bits grid (1D or 2D) holds exactly one point."""
    ix = (u[:, 0] * 2**bits_x).long()
    index = ix if bits_y is None else ix * 2**bits_y + (u[:, 1] * 2**bits_y).long()
    size = 2**bits_x * (1 if bits_y is None else 2**bits_y)
    return bool((torch.bincount(index, minlength=size) == 1).all())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("randomization", ["scramble", "shift"])
def test_rqmc_points_keep_the_net_structure(seed, randomization):
    """64 scrambled points: one per 1/64 interval in every coordinate, one per dyadic box of area 1/64 in (x0, x1)."""
    sampler = RQMC(6, seed=seed, randomization=randomization)
    for _ in range(2):  # two randomizations
        u = sampler.uniform(64)
        for j in range(6):
            assert _one_point_per_box(u[:, j:j + 1], 6)
        for k in range(7):  # Sobol's first two coordinates form a (0, 6, 2)-net
            assert _one_point_per_box(u[:, :2], k, 6 - k)


def _leading_digit(x):
    """Index (0 = first binary digit after the point) of the leading 1 of 30-bit integers."""
    return 29 - torch.floor(torch.log2(x.double())).long()


def test_linear_scramble_is_lower_triangular_with_unit_diagonal():
    """L c keeps the leading 1 of each direction number c and randomizes only the digits after it."""
    directions = SobolEngine(50).sobolstate
    scrambled = linear_scramble(directions, torch.Generator().manual_seed(0))
    assert torch.equal(_leading_digit(scrambled), _leading_digit(directions))
    assert not torch.equal(scrambled, directions)
    # van der Corput (dimension 0) has c_k = e_k, so L c_k is column k of L: digits after k are random coins
    low = scrambled[0, :20] & ((1 << (29 - torch.arange(20))) - 1)
    assert 0.3 < float(sum(bin(int(v)).count("1") for v in low)) / sum(29 - k for k in range(20)) < 0.7


def test_scrambling_the_first_columns_is_a_prefix_of_scrambling_all():
    directions = SobolEngine(8).sobolstate
    part = linear_scramble(directions, torch.Generator().manual_seed(1), columns=4)
    full = linear_scramble(directions, torch.Generator().manual_seed(1))
    assert part.shape == (8, 4) and torch.equal(part, full[:, :4]) and not torch.equal(part, directions[:, :4])


def test_shift_randomization_keeps_one_scramble_and_draws_a_fresh_digital_shift():
    sampler = RQMC(4, seed=5, randomization="shift")
    a, b = (sampler.uniform(32) * 2**30).long(), (sampler.uniform(32) * 2**30).long()
    xor = a ^ b
    assert not torch.equal(a, b)
    assert torch.equal(xor, xor[:1].expand_as(xor))  # the same shift for every point of a coordinate


def test_a_fresh_scramble_per_call_is_not_a_shift():
    sampler = RQMC(4, seed=5)
    a, b = (sampler.uniform(32) * 2**30).long(), (sampler.uniform(32) * 2**30).long()
    assert not torch.equal(a ^ b, (a ^ b)[:1].expand_as(a))


@pytest.mark.parametrize("kind", ["mc", "rqmc"])
def test_seeds_make_draws_reproducible(kind):
    a, b, c = make_sampler(kind, 3, seed=7), make_sampler(kind, 3, seed=7), make_sampler(kind, 3, seed=8)
    first = a.normal(8)
    assert torch.equal(first, b.normal(8)) and not torch.equal(first, c.normal(8))
    assert not torch.equal(a.normal(8), first)  # every call draws anew


@pytest.mark.parametrize("randomization", ["scramble", "shift"])
def test_every_point_of_a_randomized_set_is_uniform(randomization):
    """Over 1000 randomizations each of the 4 points is U(0, 1) in each coordinate (quarters within 4.5 SE)."""
    sampler = RQMC(2, seed=4, randomization=randomization)
    u = torch.stack([sampler.uniform(4) for _ in range(1000)])  # [1000, 4 points, 2]
    counts = torch.stack([((u >= q / 4) & (u < (q + 1) / 4)).sum(0) for q in range(4)])  # [4 quarters, 4, 2]
    assert bool(((counts - 250).abs() <= 4.5 * math.sqrt(1000 * 0.25 * 0.75)).all())


@pytest.mark.parametrize("randomization", ["scramble", "shift"])
def test_rqmc_estimates_are_unbiased(randomization):
    """Mean of 400 RQMC estimates of E[exp(u1 + u2 + u3)] = (e - 1)^3 within 4 standard errors."""
    sampler = RQMC(3, seed=11, randomization=randomization)
    estimates = torch.stack([sampler.uniform(16).sum(1).exp().mean() for _ in range(400)])
    exact = (math.e - 1) ** 3
    se = float(estimates.std() / math.sqrt(400))
    assert abs(float(estimates.mean()) - exact) < 4 * se + 1e-12


def _rmse(kind, n, reps=40, dim=4):
    sampler = make_sampler(kind, dim, seed=1)
    f = lambda u: (1 + 0.5 * (u**2 - 1 / 3)).prod(1)  # smooth, integral exactly 1
    return float(torch.stack([f(sampler.uniform(n)).mean() - 1 for _ in range(reps)]).pow(2).mean().sqrt())


def test_rqmc_error_falls_faster_than_mc():
    rmse = {(k, n): _rmse(k, n) for k in ("mc", "rqmc") for n in (16, 1024)}
    slopes = {k: math.log(rmse[k, 1024] / rmse[k, 16]) / math.log(64) for k in ("mc", "rqmc")}
    assert -0.75 < slopes["mc"] < -0.25  # MC: N^-1/2
    assert slopes["rqmc"] < -1.0  # scrambled nets on smooth integrands: about N^-3/2
    assert rmse["rqmc", 1024] < rmse["mc", 1024] / 30


@pytest.mark.parametrize("factory", [lambda: QMC(2), lambda: RQMC(2, seed=0), lambda: RQMC(2, seed=0, randomization="shift")])
def test_n_not_a_power_of_two_warns(factory):
    with pytest.warns(QMCBalanceWarning, match="n=10.*power of two"):
        factory().uniform(10)
    assert issubclass(QMCBalanceWarning, EtudeWarning)


def test_mc_and_powers_of_two_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MC(2, seed=0).uniform(10)
        RQMC(2, seed=0).uniform(16)


@pytest.mark.parametrize("call, match", [
    (lambda: RQMC(0), "dim must be an int in \\[1, 21201\\], got 0"),
    (lambda: QMC(21202), "dim must be"),
    (lambda: MC(2.0), "dim must be .* got 2.0 \\(float\\)"),
    (lambda: RQMC(2, seed=-1), "seed must be"),
    (lambda: MC(2, seed="a"), "seed must be .*str"),
    (lambda: RQMC(2, randomization="owen"), "randomization must be one of \\('scramble', 'shift'\\), got 'owen'"),
    (lambda: RQMC(2, eps=0.7), "eps must be"),
    (lambda: RQMC(2).normal(0), "n must be an int >= 1, got 0"),
    (lambda: MC(2).uniform(True), "n must be"),
    (lambda: make_sampler("sobol", 2), "sampler kind must be one of \\('mc', 'qmc', 'rqmc'\\), got 'sobol'"),
])
def test_bad_input_names_the_argument(call, match):
    with pytest.raises(BadInputError, match=match):
        call()
