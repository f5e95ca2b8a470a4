"""Pyro adapter: autoguides whose reparameterized samples come from MC, QMC or RQMC base points.

Buchholz, Wenzel, Mandt, ICML 2018 (arXiv:1807.01604), Sec. 3: QMCVI changes only where the
base noise eps of z = T_lambda(eps) comes from. Pyro's ``AutoContinuous`` guides already factor
their posterior as a base distribution and a transform (``get_base_dist``, ``get_transform``), so
the adapter swaps the N(0, I) base for ``QMCNormal``, whose ``rsample`` draws all particles of a
step as one point set; the model is untouched.

Use it with vectorized particles, so that one ``rsample`` call draws all N particles together::

    guide = QMCAutoDiagonalNormal(model, sampler="rqmc", seed=0)
    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO(num_particles=16, vectorize_particles=True))

Without ``vectorize_particles`` Pyro draws particles one by one and RQMC degenerates to MC: the
guide then warns (``ParticleWarning``). Under ``JitTrace_ELBO`` the base points are drawn by traced
random ops, so that every step still gets fresh ones: MC draws iid uniforms, RQMC applies a fresh
random digital shift to a point set scrambled once (Matousek's linear scramble, at trace time),
QMC is the same deterministic point set. Needs the optional extra: ``pip install 'etude[pyro]'``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import torch

from etude.errors import EtudeWarning, MissingDependencyError, warn_at_caller
from etude.vi.qmc import MC, QMC, RQMC, SOBOL_BITS, BaseSampler, linear_scramble, make_sampler, sobol_levels, sobol_net

__all__ = [
    "ParticleWarning",
    "QMCNormal",
    "QMCAutoDiagonalNormal",
    "QMCAutoMultivariateNormal",
    "pyro_available",
    "traced_uniform",
]


class ParticleWarning(EtudeWarning):
    """An ELBO with num_particles > 1 draws particles one by one: (R)QMC point sets of size 1 are MC."""


def traced_uniform(sampler: BaseSampler, n: int) -> torch.Tensor:
    """u [n, dim] float64 in (eps, 1 - eps) drawn by ops a JIT trace records, so each replay draws anew.

    MC: iid uniforms from torch's global generator (seeded by ``pyro.set_rng_seed``). QMC: the
    deterministic Sobol points. RQMC: one linear scramble (made at trace time from the sampler's
    generator) and a fresh random digital shift per replay, so each point stays uniform on the cube
    and the set stays a net.
    """
    if isinstance(sampler, MC):
        u = torch.rand(n, sampler.dim, dtype=torch.float64)
    elif isinstance(sampler, RQMC):
        nets = sampler.__dict__.setdefault("_traced_nets", {})
        if n not in nets:
            nets[n] = sobol_net(linear_scramble(sampler.directions, sampler.generator, sobol_levels(n)), n)
        shift = torch.randint(0, 2**SOBOL_BITS, (sampler.dim,), dtype=torch.int32)
        u = (nets[n] ^ shift).double() * 2.0**-SOBOL_BITS
    elif isinstance(sampler, QMC):
        u = sampler.uniform(n)  # clamped below as every point is
    else:
        raise MissingDependencyError(f"{type(sampler).__name__} has no traced form; use MC, QMC or RQMC")
    return u.clamp(sampler.eps, 1.0 - sampler.eps)


def _unvectorized_elbo() -> Any:
    """The Pyro ELBO up the call stack that draws num_particles > 1 one by one, or None."""
    try:
        from pyro.infer.elbo import ELBO
    except ImportError:  # pragma: no cover
        return None
    frame: FrameType | None = sys._getframe(1)
    for _ in range(40):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, ELBO):
            return owner if owner.num_particles > 1 and not owner.vectorize_particles else None
        frame = frame.f_back
    return None


try:  # pyro is an optional extra
    import pyro.distributions as dist
    from pyro.distributions import constraints
    from pyro.infer.autoguide import AutoDiagonalNormal, AutoMultivariateNormal

    _HAVE_PYRO = True
except ImportError:  # pragma: no cover - exercised only without the extra
    _HAVE_PYRO = False


def pyro_available() -> bool:
    """True when the optional ``pyro-ppl`` package is importable."""
    return _HAVE_PYRO


if _HAVE_PYRO:

    class QMCNormal(dist.TorchDistribution):
        """N(0, I_d) whose ``rsample`` returns ``sampler.normal(n)``: one point set for all n draws.

        batch_shape is whatever Pyro expands it to (the particle plate); event_shape is [d].
        """

        arg_constraints: dict = {}
        support = constraints.real_vector
        has_rsample = True

        def __init__(
            self,
            sampler: BaseSampler,
            dtype: torch.dtype = torch.float32,
            batch_shape: torch.Size = torch.Size(),
            validate_args: bool | None = None,
        ) -> None:
            self.sampler, self.dtype = sampler, dtype
            super().__init__(torch.Size(batch_shape), torch.Size([sampler.dim]), validate_args=validate_args)

        def expand(self, batch_shape: Any, _instance: Any = None) -> QMCNormal:
            return QMCNormal(self.sampler, self.dtype, torch.Size(batch_shape))

        def rsample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = torch.Size()) -> torch.Tensor:
            shape = self._extended_shape(torch.Size(sample_shape))
            n = 1
            for size in shape[:-1]:  # under a JIT trace the sizes are 0-d tensors
                n *= size if isinstance(size, int) else int(size)
            if torch.jit.is_tracing():
                eps = torch.erfinv(2.0 * traced_uniform(self.sampler, n) - 1.0) * math.sqrt(2.0)
            else:
                eps = self.sampler.normal(n, torch.float64)
            return eps.to(self.dtype).reshape(tuple(int(s) for s in shape))

        def log_prob(self, value: torch.Tensor) -> torch.Tensor:
            return (-0.5 * value**2).sum(-1) - 0.5 * self.sampler.dim * math.log(2 * math.pi)

    class _BaseSampledGuide:
        """Mixin: the guide's latent is get_transform() applied to ``QMCNormal`` base points."""

        # set by the Pyro autoguide this is mixed into
        latent_dim: int
        loc: torch.nn.Parameter
        get_transform: Callable[..., Any]
        _qmc_kind: str
        _qmc_seed: int | None
        _qmc_sampler: BaseSampler | None

        def _init_sampler(self, sampler: str, seed: int | None) -> None:
            self._qmc_kind, self._qmc_seed = sampler, seed
            self._qmc_sampler = None
            make_sampler(sampler, 1, seed)  # validate the kind and seed now, not at the first step

        @property
        def base_sampler(self) -> BaseSampler | None:
            """The sampler, built at the first call once the latent dimension is known."""
            return self._qmc_sampler

        def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
            if self._qmc_kind != "mc" and not getattr(self, "_particles_checked", False):
                self._particles_checked = True
                elbo = _unvectorized_elbo()
                if elbo is not None:
                    warn_at_caller(
                        f"{type(elbo).__name__}(num_particles={elbo.num_particles}) without "
                        f"vectorize_particles=True draws the particles one by one, so each "
                        f"{self._qmc_kind.upper()} point set has one point and the estimate is plain "
                        f"MC; pass vectorize_particles=True",
                        ParticleWarning,
                    )
            if self._qmc_sampler is None:
                self._qmc_sampler = make_sampler(self._qmc_kind, self.latent_dim, self._qmc_seed)
            base = QMCNormal(self._qmc_sampler, self.loc.dtype)
            return dist.TransformedDistribution(base, self.get_transform(*args, **kwargs))

    class QMCAutoDiagonalNormal(_BaseSampledGuide, AutoDiagonalNormal):
        """Pyro's ``AutoDiagonalNormal`` (mean-field) with base points from ``sampler``.

        :param model: the Pyro model, unchanged.
        :param sampler: 'mc', 'qmc' or 'rqmc'. :param seed: the sampler's seed.
        Other keyword arguments go to ``AutoDiagonalNormal``.
        """

        def __init__(self, model: Any, sampler: str = "rqmc", seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(model, **kwargs)
            self._init_sampler(sampler, seed)

    class QMCAutoMultivariateNormal(_BaseSampledGuide, AutoMultivariateNormal):
        """Pyro's ``AutoMultivariateNormal`` (full-rank) with base points from ``sampler``."""

        def __init__(self, model: Any, sampler: str = "rqmc", seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(model, **kwargs)
            self._init_sampler(sampler, seed)

else:  # pragma: no cover

    def _missing(*args: Any, **kwargs: Any) -> Any:
        raise MissingDependencyError("the Pyro adapter needs pyro-ppl: pip install 'etude[pyro]'")

    QMCNormal = QMCAutoDiagonalNormal = QMCAutoMultivariateNormal = _missing  # type: ignore[assignment, misc]
