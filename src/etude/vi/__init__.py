"""Quasi-Monte Carlo variational inference (Buchholz, Wenzel, Mandt, ICML 2018, arXiv:1807.01604).

Import what you need from here::

    from etude.vi import RQMC, MeanFieldGaussian, elbo, fit, make_model
    model = make_model("logistic")                     # breast-cancer data, d = 31
    q = MeanFieldGaussian(model.dim, scale=0.1)
    history = fit(model, q, RQMC(model.dim, seed=0), steps=500, n=16)

The Pyro adapter (``QMCAutoDiagonalNormal``, ``QMCAutoMultivariateNormal``, ``QMCNormal``) loads
on first use and needs the optional extra ``etude[pyro]``.
"""

from importlib import import_module
from typing import Any

from etude.errors import BadInputError
from etude.vi.analysis import first_reach, gap_summary, loglog_slope, trace_variance, variance_ratio, window_mean
from etude.vi.elbo import (
    ENTROPY,
    LogJoint,
    SampleSizeSchedule,
    base_normals,
    elbo,
    gradient_replicates,
    iwae,
)
from etude.vi.families import FAMILIES, FullRankGaussian, GaussianFamily, MeanFieldGaussian, make_family
from etude.vi.hierarchical import HierarchicalLinearRegression, PoissonGLM
from etude.vi.models import (
    BayesianLinearRegression,
    BayesianLogisticRegression,
    BayesianNeuralNetwork,
    Model,
    load_breast_cancer,
    load_diabetes,
)
from etude.vi.qmc import (
    MC,
    QMC,
    RQMC,
    SAMPLERS,
    BaseSampler,
    QMCBalanceWarning,
    is_power_of_two,
    linear_scramble,
    make_sampler,
    sobol_points,
)
from etude.vi.train import OPTIMIZERS, FitHistory, evaluate_elbo, fit

MODELS: dict[str, type[Model]] = {
    "linear": BayesianLinearRegression,
    "logistic": BayesianLogisticRegression,
    "hierarchical": HierarchicalLinearRegression,
    "poisson": PoissonGLM,
    "bnn": BayesianNeuralNetwork,
}
"""The paper's models by name, with their default data (d = 11, 31, 105, 33, 601)."""


def make_model(name: str, **kwargs: Any) -> Model:
    """The model named ``name`` (see ``MODELS``), built with ``kwargs``."""
    if name not in MODELS:
        raise BadInputError(f"model must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](**kwargs)


_LAZY = {
    name: "etude.vi.pyro_guides"
    for name in ("QMCNormal", "QMCAutoDiagonalNormal", "QMCAutoMultivariateNormal", "pyro_available")
}

__all__ = [
    "ENTROPY",
    "FAMILIES",
    "MC",
    "MODELS",
    "OPTIMIZERS",
    "QMC",
    "RQMC",
    "SAMPLERS",
    "BaseSampler",
    "BayesianLinearRegression",
    "BayesianLogisticRegression",
    "BayesianNeuralNetwork",
    "FitHistory",
    "FullRankGaussian",
    "GaussianFamily",
    "HierarchicalLinearRegression",
    "LogJoint",
    "MeanFieldGaussian",
    "Model",
    "PoissonGLM",
    "QMCAutoDiagonalNormal",
    "QMCAutoMultivariateNormal",
    "QMCBalanceWarning",
    "QMCNormal",
    "SampleSizeSchedule",
    "base_normals",
    "elbo",
    "evaluate_elbo",
    "first_reach",
    "fit",
    "gap_summary",
    "gradient_replicates",
    "is_power_of_two",
    "iwae",
    "linear_scramble",
    "load_breast_cancer",
    "load_diabetes",
    "loglog_slope",
    "make_family",
    "make_model",
    "make_sampler",
    "pyro_available",
    "sobol_points",
    "trace_variance",
    "variance_ratio",
    "window_mean",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'etude.vi' has no attribute {name!r}")
