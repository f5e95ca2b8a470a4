"""The Pyro adapter under JitTrace_ELBO and unvectorized particles; float32 uniforms; MC's dimension; warning lines."""

import warnings

import pytest
import torch

from etude.errors import BadInputError
from etude.vi import MC, QMC, RQMC, QMCBalanceWarning

pyro = pytest.importorskip("pyro")
import pyro.distributions as dist  # noqa: E402
from pyro.infer import SVI, JitTrace_ELBO, Trace_ELBO  # noqa: E402
from pyro.optim import Adam  # noqa: E402

from etude.vi import QMCAutoDiagonalNormal  # noqa: E402
from etude.vi.pyro_guides import ParticleWarning, traced_uniform  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated:DeprecationWarning")


def _model():
    w = pyro.sample("w", dist.Normal(torch.zeros(3), 1.0).to_event(1))
    pyro.sample("y", dist.Normal(w.sum(-1), 0.5), obs=torch.tensor(1.0))


@pytest.mark.parametrize("kind", ["mc", "qmc", "rqmc"])
def test_svi_runs_under_jit_trace_elbo(kind: str) -> None:
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    guide = QMCAutoDiagonalNormal(_model, sampler=kind, seed=0)
    svi = SVI(_model, guide, Adam({"lr": 0.05}), JitTrace_ELBO(num_particles=8, vectorize_particles=True,
                                                                ignore_jit_warnings=True))
    losses = [svi.step() for _ in range(30)]
    assert all(torch.isfinite(torch.tensor(losses)))
    loc = pyro.param("QMCAutoDiagonalNormal.loc").detach()
    # the exact posterior mean of w is (1/3.25) * (1, 1, 1) (prior N(0, I), y = sum w + N(0, 0.25))
    assert float(loc.sum()) > 0.2  # moved from 0 towards the posterior mean's sum 0.92


@pytest.mark.parametrize(("sampler", "fresh"), [(MC(2, seed=0), True), (RQMC(2, seed=0), True), (QMC(2), False)])
def test_traced_points_are_redrawn_on_every_replay(sampler, fresh: bool) -> None:
    traced = torch.jit.trace(lambda x: x + traced_uniform(sampler, 8), torch.zeros(8, 2), check_trace=False)
    first, second = traced(torch.zeros(8, 2)), traced(torch.zeros(8, 2))
    assert (not torch.equal(first, second)) == fresh
    for u in (first, second):
        assert bool(((u > 0) & (u < 1)).all())
        if not isinstance(sampler, MC):  # a (0, 3, 2)-net: one point in each eighth of every axis
            for axis in range(2):
                assert sorted((u[:, axis] * 8).floor().int().tolist()) == list(range(8))


def test_unvectorized_particles_warn_at_the_callers_line() -> None:
    pyro.clear_param_store()
    guide = QMCAutoDiagonalNormal(_model, sampler="rqmc", seed=0)
    svi = SVI(_model, guide, Adam({"lr": 0.01}), Trace_ELBO(num_particles=4))
    with pytest.warns(ParticleWarning, match="vectorize_particles=True") as caught:
        svi.step()
    assert caught[0].filename == __file__
    for elbo, kind in ((Trace_ELBO(num_particles=4, vectorize_particles=True), "rqmc"),
                       (Trace_ELBO(num_particles=1), "rqmc"), (Trace_ELBO(num_particles=4), "mc")):
        pyro.clear_param_store()
        svi = SVI(_model, QMCAutoDiagonalNormal(_model, sampler=kind, seed=0), Adam({"lr": 0.01}), elbo)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ParticleWarning)
            svi.step()


class _Edges(MC):
    """An MC sampler whose points sit on the edges of the cube."""

    def _points(self, n: int) -> torch.Tensor:
        return torch.tensor([[0.0], [1.0 - 1e-12], [1e-12], [0.5]], dtype=torch.float64)[:n]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_uniforms_stay_inside_the_open_interval_in_every_dtype(dtype) -> None:
    sampler = _Edges(1)
    u = sampler.uniform(4, dtype)
    assert u.dtype == dtype
    assert bool((u.double() >= sampler.eps).all()) and bool((u.double() <= 1 - sampler.eps).all())
    assert bool((u > 0).all() & (u < 1).all())
    assert bool(torch.isfinite(torch.erfinv(2 * u.double() - 1)).all())


def test_mc_has_no_sobol_dimension_limit() -> None:
    assert MC(30_000, seed=0).normal(2).shape == (2, 30_000)
    for cls in (QMC, RQMC):
        with pytest.raises(BadInputError, match="21201"):
            cls(30_000)


def test_balance_warning_points_at_the_caller() -> None:
    with pytest.warns(QMCBalanceWarning) as caught:
        RQMC(2, seed=0).normal(6)
    assert caught[0].filename == __file__
