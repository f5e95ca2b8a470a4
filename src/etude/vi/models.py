"""Log joints of the paper's regression models, on data bundled with scikit-learn (no downloads).

Buchholz, Wenzel, Mandt, ICML 2018 (arXiv:1807.01604), Sec. 5 and the appendix use Bayesian
linear and logistic regression and a Bayesian neural network; our data: scikit-learn's
diabetes (442 x 10, regression) and breast-cancer (569 x 30, binary) sets, standardized.
Every model is a callable ``log_joint(z)``: z [..., d] -> [...] (unnormalized log posterior,
including every constant of the likelihood and prior), with ``dim`` and ``initial_loc()``.
The multi-level models live in ``etude.vi.hierarchical``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from etude.errors import BadInputError, MissingDependencyError
from etude.validation import check_int, check_number
from etude.vi.densities import normal_log_prob

__all__ = [
    "Model",
    "BayesianLinearRegression",
    "BayesianLogisticRegression",
    "BayesianNeuralNetwork",
    "load_diabetes",
    "load_breast_cancer",
    "standardize",
]


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Columns (or a vector) to mean 0 and standard deviation 1."""
    return (x - x.mean(0)) / x.std(0)


@functools.cache
def _bundled(name: str, delimiter: str | None, skiprows: int) -> np.ndarray:
    """A data file shipped inside scikit-learn, read without importing it (saves ~3 s per process).

    Returns an empty array when the file is not where scikit-learn keeps it; callers then fall
    back to scikit-learn's own loader.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("the diabetes and breast-cancer data need scikit-learn: pip install scikit-learn")
    path = Path(spec.origin).parent / "datasets" / "data" / name
    if not path.is_file():
        return np.empty(0)
    return np.loadtxt(path, delimiter=delimiter, skiprows=skiprows)


def load_diabetes(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's diabetes data, standardized: X [442, 10], y [442]."""
    x, y = _bundled("diabetes_data_raw.csv.gz", None, 0), _bundled("diabetes_target.csv.gz", None, 0)
    if x.size == 0 or y.size == 0:  # another scikit-learn layout: use its loader
        from sklearn.datasets import load_diabetes as sk_load

        x, y = sk_load(return_X_y=True)
    return standardize(torch.tensor(x, dtype=dtype)), standardize(torch.tensor(y, dtype=dtype))


def load_breast_cancer(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's breast-cancer data: X [569, 30] standardized, y [569] in {0, 1} (1 = benign)."""
    table = _bundled("breast_cancer.csv", ",", 1)
    if table.size == 0:
        from sklearn.datasets import load_breast_cancer as sk_load

        x, y = sk_load(return_X_y=True)
    else:
        x, y = table[:, :-1], table[:, -1]
    return standardize(torch.tensor(x, dtype=dtype)), torch.tensor(y, dtype=dtype)


def _check_xy(x: object, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise BadInputError(f"x must be a tensor [n, p], got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(y, torch.Tensor) or y.shape != x.shape[:1]:
        raise BadInputError(
            f"y must be a tensor [n] with n = {x.shape[0]}, got {getattr(y, 'shape', type(y).__name__)}"
        )
    for name, t in (("x", x), ("y", y)):
        if not bool(torch.isfinite(t).all()):
            raise BadInputError(f"{name} contains NaN or infinite values (shape {tuple(t.shape)})")
    return x, y.to(x.dtype)


class Model:
    """A differentiable log joint with a name, a dimension d and an initial variational mean."""

    name: str = ""
    dim: int = 0

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != self.dim:
            raise BadInputError(f"{self.name}: z must have last dimension {self.dim}, got shape {tuple(z.shape)}")
        return self.log_joint(z)

    def initial_loc(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """mu at initialization [d]: zeros unless the model needs symmetry breaking."""
        return torch.zeros(self.dim, dtype=torch.float64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class BayesianLinearRegression(Model):
    """y ~ N(X w + b, s_y^2), (w, b) ~ N(0, s_0^2 I); z = (w, b), d = p + 1. Conjugate.

    :param x: X [n, p]; :param y: y [n] (default: the diabetes data, d = 11).
    :param noise_scale: s_y, known. :param prior_scale: s_0.
    """

    name = "linear"

    def __init__(
        self,
        x: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
        noise_scale: float = 0.7,
        prior_scale: float = 1.0,
    ) -> None:
        if x is None and y is None:
            x, y = load_diabetes()
        self.x, self.y = _check_xy(x, y)
        self.design = torch.cat([self.x, torch.ones_like(self.x[:, :1])], 1)  # A = [X, 1]
        self.noise_scale = check_number("noise_scale", noise_scale, 0, low_open=True)
        self.prior_scale = check_number("prior_scale", prior_scale, 0, low_open=True)
        self.dim = self.design.shape[1]

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        mean = z @ self.design.T.to(z.dtype)  # [..., n]
        return normal_log_prob(self.y.to(z.dtype), mean, self.noise_scale).sum(-1) + normal_log_prob(
            z, 0.0, self.prior_scale
        ).sum(-1)

    def posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact posterior (mean [d], precision [d, d]): Lambda = A^T A / s_y^2 + I / s_0^2."""
        a = self.design
        precision = a.T @ a / self.noise_scale**2 + torch.eye(self.dim, dtype=a.dtype) / self.prior_scale**2
        mean = torch.linalg.solve(precision, a.T @ self.y / self.noise_scale**2)
        return mean, precision

    def log_evidence(self) -> float:
        """log p(y) = log N(y; 0, s_0^2 A A^T + s_y^2 I)."""
        a = self.design
        cov = self.prior_scale**2 * a @ a.T + self.noise_scale**2 * torch.eye(a.shape[0], dtype=a.dtype)
        return float(torch.distributions.MultivariateNormal(torch.zeros_like(self.y), cov).log_prob(self.y))

    def mean_field_optimum(self) -> tuple[torch.Tensor, torch.Tensor]:
        """argmax of the ELBO over mean-field Gaussians: mu* = posterior mean, sigma*_i = Lambda_ii^{-1/2}."""
        mean, precision = self.posterior()
        return mean, torch.diagonal(precision).rsqrt()


class BayesianLogisticRegression(Model):
    """y ~ Bernoulli(sigmoid(X w + b)), (w, b) ~ N(0, s_0^2 I); d = p + 1 (breast cancer: 31)."""

    name = "logistic"

    def __init__(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None, prior_scale: float = 1.0) -> None:
        if x is None and y is None:
            x, y = load_breast_cancer()
        self.x, self.y = _check_xy(x, y)
        if not bool(((self.y == 0) | (self.y == 1)).all()):
            raise BadInputError("y must hold only 0 and 1 for logistic regression")
        self.design = torch.cat([self.x, torch.ones_like(self.x[:, :1])], 1)
        self.prior_scale = check_number("prior_scale", prior_scale, 0, low_open=True)
        self.dim = self.design.shape[1]

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        logits = z @ self.design.T.to(z.dtype)  # [..., n]
        log_lik = (self.y.to(z.dtype) * logits - F.softplus(logits)).sum(-1)  # sum y l - log(1 + e^l)
        return log_lik + normal_log_prob(z, 0.0, self.prior_scale).sum(-1)


class BayesianNeuralNetwork(Model):
    """One hidden tanh layer: y ~ N(W2 tanh(X W1 + b1) + b2, s_y^2), every weight ~ N(0, s_0^2).

    z = (W1 [p*H], b1 [H], W2 [H], b2 [1]); diabetes with H = 50 gives d = 10*50 + 50 + 50 + 1 = 601.
    """

    name = "bnn"

    def __init__(
        self,
        x: torch.Tensor | None = None,
        y: torch.Tensor | None = None,
        hidden: int = 50,
        noise_scale: float = 0.7,
        prior_scale: float = 1.0,
    ) -> None:
        if x is None and y is None:
            x, y = load_diabetes()
        self.x, self.y = _check_xy(x, y)
        check_int("hidden", hidden, 1)
        self.hidden = hidden
        self.noise_scale = check_number("noise_scale", noise_scale, 0, low_open=True)
        self.prior_scale = check_number("prior_scale", prior_scale, 0, low_open=True)
        p = self.x.shape[1]
        self.dim = p * hidden + 2 * hidden + 1

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Network outputs [..., n] for weights z [..., d] (every weight set in one matrix product)."""
        p, h = self.x.shape[1], self.hidden
        batch = z.shape[:-1]
        flat = z.reshape(-1, self.dim)  # [B, d]
        w1 = flat[:, : p * h].reshape(-1, p, h).permute(1, 0, 2).reshape(p, -1)  # [p, B*H]
        b1, w2, b2 = flat[:, p * h : p * h + h], flat[:, p * h + h : p * h + 2 * h], flat[:, -1]
        hidden = torch.tanh((self.x.to(z.dtype) @ w1).reshape(-1, flat.shape[0], h) + b1)  # [n, B, H]
        out = torch.einsum("nbh,bh->bn", hidden, w2) + b2.unsqueeze(-1)  # [B, n]
        return out.reshape(*batch, -1)

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        return normal_log_prob(self.y.to(z.dtype), self.predict(z), self.noise_scale).sum(-1) + normal_log_prob(
            z, 0.0, self.prior_scale
        ).sum(-1)

    def initial_loc(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """W1 ~ N(0, 1/p), W2 ~ N(0, 1/H), biases 0 (breaks the symmetry of the hidden units)."""
        p, h = self.x.shape[1], self.hidden
        loc = torch.zeros(self.dim, dtype=torch.float64)
        loc[: p * h] = torch.randn(p * h, generator=generator, dtype=torch.float64) / math.sqrt(p)
        loc[p * h + h : p * h + 2 * h] = torch.randn(h, generator=generator, dtype=torch.float64) / math.sqrt(h)
        return loc
