"""Pyro adapter: autoguides whose reparameterized samples come from MC, QMC or RQMC base points.

Buchholz, Wenzel, Mandt, ICML 2018 (arXiv:1807.01604), Sec. 3: QMCVI changes only where the
base noise eps of z = T_lambda(eps) comes from. Pyro's ``AutoContinuous`` guides already factor
their posterior as a base distribution and a transform (``get_base_dist``, ``get_transform``), so
the adapter swaps the N(0, I) base for ``QMCNormal``, whose ``rsample`` draws all particles of a
step as one point set; the model is untouched.

Use it with vectorized particles, so that one ``rsample`` call draws all N particles together::

    guide = QMCAutoDiagonalNormal(model, sampler="rqmc", seed=0)
    svi = SVI(model, guide, Adam({"lr": 0.01}), Trace_ELBO(num_particles=16, vectorize_particles=True))

Without ``vectorize_particles`` Pyro draws particles one by one and RQMC degenerates to MC.
Needs the optional extra: ``pip install 'etude[pyro]'``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from etude.errors import MissingDependencyError
from etude.vi.qmc import BaseSampler, make_sampler

__all__ = ["QMCNormal", "QMCAutoDiagonalNormal", "QMCAutoMultivariateNormal", "pyro_available"]

try:  # pyro is an optional extra
    import pyro.distributions as dist
    from pyro.distributions import constraints
    from pyro.infer.autoguide import AutoDiagonalNormal, AutoMultivariateNormal
except ImportError:  # pragma: no cover - exercised only without the extra
    dist = None


def pyro_available() -> bool:
    """True when the optional ``pyro-ppl`` package is importable."""
    return dist is not None


if dist is not None:

    class QMCNormal(dist.TorchDistribution):
        """N(0, I_d) whose ``rsample`` returns ``sampler.normal(n)``: one point set for all n draws.

        batch_shape is whatever Pyro expands it to (the particle plate); event_shape is [d].
        """

        arg_constraints: dict = {}
        support = constraints.real_vector
        has_rsample = True

        def __init__(self, sampler: BaseSampler, dtype: torch.dtype = torch.float32,
                     batch_shape: torch.Size = torch.Size(), validate_args: bool | None = None) -> None:
            self.sampler, self.dtype = sampler, dtype
            super().__init__(torch.Size(batch_shape), torch.Size([sampler.dim]), validate_args=validate_args)

        def expand(self, batch_shape: Any, _instance: Any = None) -> "QMCNormal":
            return QMCNormal(self.sampler, self.dtype, torch.Size(batch_shape))

        def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
            shape = self._extended_shape(torch.Size(sample_shape))
            n = math.prod(shape[:-1])
            return self.sampler.normal(n, self.dtype).reshape(shape)

        def log_prob(self, value: torch.Tensor) -> torch.Tensor:
            return (-0.5 * value**2).sum(-1) - 0.5 * self.sampler.dim * math.log(2 * math.pi)

    class _BaseSampledGuide:
        """Mixin: the guide's latent is get_transform() applied to ``QMCNormal`` base points."""

        def _init_sampler(self, sampler: str, seed: int | None) -> None:
            self._qmc_kind, self._qmc_seed, self._qmc_sampler = sampler, seed, None
            make_sampler(sampler, 1, seed)  # validate the kind and seed now, not at the first step

        @property
        def base_sampler(self) -> BaseSampler | None:
            """The sampler, built at the first call once the latent dimension is known."""
            return self._qmc_sampler

        def get_posterior(self, *args: Any, **kwargs: Any) -> Any:
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
