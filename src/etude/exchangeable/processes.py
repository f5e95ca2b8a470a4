"""Exchangeable Student-t and Gaussian processes, one independent process per latent dimension.

Korshunova, Degrave, Huszar, Gal, Gretton, Dambre, "BRUNO: A Deep Recurrent Model for Exchangeable
Data", NeurIPS 2018 (arXiv:1802.07535), Sec. 3 and Appendix. Every dimension d is a sequence with
mean mu, variance v, covariance rho between any two elements (0 < rho < v) and, for the t-process,
nu > 2 degrees of freedom. The posterior predictive after i observations is, Eq. (recurrent updates):

    d_i = rho / (v + rho (i-1));  mu_i = (1 - d_i) mu_{i-1} + d_i x_i;  k_i = (1 - d_i) k_{i-1} + d_i (v - rho)
    beta_i = beta_{i-1} + (x_i - mu_{i-1})^2 / k_{i-1};  nu_i = nu + i
    p(x_{i+1} | x_<=i) = t_{nu_i}(mu_i, sigma_i^2),  sigma_i^2 = (nu + beta_i - 2) / (nu + i - 2) k_i

(Gaussian process: N(mu_i, k_i)), with mu_0 = mu, k_0 = v, beta_0 = 0. Parameters follow the official
code: v = softplus(a)^2, rho = sigmoid(b) v, nu = exp(c) + 2, mu fixed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from etude.errors import BadInputError
from etude.validation import check_int

__all__ = ["ExchangeableProcess", "GaussianProcess", "StudentTProcess", "gaussian_log_prob", "student_t_log_prob"]


def student_t_log_prob(x: Tensor, df: Tensor | float, mean: Tensor, var: Tensor) -> Tensor:
    """Elementwise log t_df(x; mean, var) with var the variance (not the squared scale):

    lgamma((df+1)/2) - lgamma(df/2) - 0.5 log((df-2) pi var) - (df+1)/2 log(1 + (x-mean)^2 / ((df-2) var)).
    """
    df = torch.as_tensor(df, dtype=x.dtype, device=x.device)
    scale2 = (df - 2) * var
    return (
        torch.lgamma((df + 1) / 2)
        - torch.lgamma(df / 2)
        - 0.5 * torch.log(math.pi * scale2)
        - (df + 1) / 2 * torch.log1p((x - mean) ** 2 / scale2)
    )


def gaussian_log_prob(x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """Elementwise log N(x; mean, var)."""
    return -0.5 * (math.log(2 * math.pi) + torch.log(var) + (x - mean) ** 2 / var)


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Standard normals drawn on the generator's device (CPU by default), moved to ``like``'s device."""
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=device).to(like.device)


def _per_dim(name: str, value: object, dim: int, dtype: torch.dtype) -> Tensor:
    """A scalar or [dim] value as a float tensor [dim]; anything else raises BadInputError."""
    if isinstance(value, bool):
        raise BadInputError(f"{name} must be a number or a tensor of shape [{dim}], got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**1000 else math.inf
        if not abs(number) <= torch.finfo(dtype).max:
            raise BadInputError(f"{name} must be a finite number within the range of {dtype}, got {value!r}")
        return torch.full((dim,), number, dtype=dtype)
    if isinstance(value, Tensor) and value.dim() <= 1 and value.numel() in (1, dim):
        return value.detach().to(dtype).reshape(-1).expand(dim).clone()
    shape = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
    raise BadInputError(f"{name} must be a number or a tensor of shape [{dim}], got {shape}")


class ExchangeableProcess(nn.Module):
    """Shared machinery: parameters, the streaming state and the batched all-prefix predictive.

    Streaming: ``reset()``, then ``log_prob(x)`` (the predictive of the next element) and
    ``update(x)`` (observe it), with x [..., dim]; ``sample(n)`` draws from the current predictive.
    """

    mu: Tensor  # buffer (registered in __init__)

    def __init__(self, dim: int, mu: float | Tensor, var: float | Tensor, corr: float | Tensor, dtype: torch.dtype):
        super().__init__()
        check_int("dim", dim, 1)
        if dtype not in (torch.float32, torch.float64):
            raise BadInputError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.dim = dim
        mu_t, var_t, corr_t = (_per_dim(n, v, dim, dtype) for n, v in (("mu", mu), ("var", var), ("corr", corr)))
        if not torch.isfinite(mu_t).all():
            raise BadInputError("mu must be finite")
        if not (var_t > 0).all():
            raise BadInputError(f"var must be > 0, got min {var_t.min().item():g}")
        if not ((corr_t > 0) & (corr_t < 1)).all():
            raise BadInputError(
                f"corr = rho / var must be in (0, 1), got range [{corr_t.min().item():g}, {corr_t.max().item():g}]"
            )
        self.register_buffer("mu", mu_t)
        sd = var_t.sqrt()
        self.a = nn.Parameter(sd + torch.log(-torch.expm1(-sd)))  # softplus^-1(sqrt(v)): v = softplus(a)^2
        self.b = nn.Parameter(torch.log(corr_t) - torch.log1p(-corr_t))  # logit(corr): rho = sigmoid(b) v
        self.reset()

    # --- parameters -------------------------------------------------------------------------------
    @property
    def var(self) -> Tensor:
        """v [dim] = softplus(a)^2."""
        return F.softplus(self.a) ** 2

    @property
    def rho(self) -> Tensor:
        """rho [dim] = sigmoid(b) v, the covariance between two elements."""
        return torch.sigmoid(self.b) * self.var

    def _predictive(self, x: Tensor, mean: Tensor, k: Tensor, beta: Tensor, n: Tensor | int) -> Tensor:
        raise NotImplementedError

    def _draw(
        self, shape: tuple[int, ...], mean: Tensor, k: Tensor, beta: Tensor, n: int, generator: torch.Generator | None
    ) -> Tensor:
        raise NotImplementedError

    # --- streaming API ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every observation: the predictive becomes the prior (mu_0 = mu, k_0 = v, beta_0 = 0)."""
        self.n = 0
        self._mean, self._k, self._beta = self.mu, self.var, torch.zeros_like(self.mu)

    def _check(self, x: object, name: str = "x") -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise BadInputError(f"{name} must be a floating-point tensor [..., {self.dim}], got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.dim:
            raise BadInputError(f"{name}: expected shape [..., {self.dim}], found {list(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise BadInputError(f"{name} contains NaN or infinite values (shape {list(x.shape)})")
        return x

    def update(self, x: Tensor) -> None:
        """Observe x [..., dim] (leading dims are independent sequences): one step of the recurrence."""
        x = self._check(x)
        v, rho = self.var, self.rho
        i = self.n + 1
        d = rho / (v + rho * (i - 1))
        self._beta = self._beta + (x - self._mean) ** 2 / self._k  # uses mu_{i-1}, k_{i-1}
        self._mean = (1 - d) * self._mean + d * x
        self._k = (1 - d) * self._k + d * (v - rho)
        self.n = i

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x_{n+1} = x | observed), summed over dimensions: x [..., dim] -> [...]."""
        x = self._check(x)
        return self._predictive(x, self._mean, self._k, self._beta, self.n).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n independent draws from the current predictive: [n, *state batch, dim]."""
        check_int("n", n, 1)
        batch = torch.broadcast_shapes(self._mean.shape, self._k.shape, self._beta.shape)
        return self._draw((n, *batch), self._mean, self._k, self._beta, self.n, generator)

    # --- batched API ------------------------------------------------------------------------------
    def prefix_stats(self, xs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Predictive statistics before each position and after the last, for all prefixes at once.

        xs [batch, n, dim] -> mean, k, beta [batch, n+1, dim] and counts i [n+1] (0..n): entry j is the
        predictive after observing xs[:, :j]. Closed forms of the recurrence:
        mu_j = mu + rho S_j / (v - rho + j rho) with S_j = sum_{l<j} (x_l - mu),
        k_j = (v - rho)(v + j rho) / (v - rho + j rho), beta_j = sum_{l<j} (x_l - mu_l)^2 / k_l.
        """
        xs = self._check(xs, "xs")
        if xs.dim() != 3:
            raise BadInputError(f"xs: expected shape [batch, n, {self.dim}], found {list(xs.shape)}")
        v, rho = self.var, self.rho
        n = xs.shape[1]
        j = torch.arange(n + 1, dtype=xs.dtype, device=xs.device).unsqueeze(-1)  # [n+1, 1]
        zero = xs.new_zeros(xs.shape[0], 1, self.dim)
        s = torch.cat([zero, torch.cumsum(xs - self.mu, dim=1)], dim=1)  # S_j
        mean = self.mu + rho * s / (v - rho + j * rho)
        k = ((v - rho) * (v + j * rho) / (v - rho + j * rho)).expand_as(mean)
        resid = (xs - mean[:, :-1]) ** 2 / k[:, :-1]
        beta = torch.cat([zero, torch.cumsum(resid, dim=1)], dim=1)
        return mean, k, beta, j.squeeze(-1)

    def sequence_log_prob(self, xs: Tensor) -> Tensor:
        """log p(x_i | x_<i) summed over dimensions, every position at once: xs [batch, n, dim] -> [batch, n]."""
        mean, k, beta, j = self.prefix_stats(xs)
        return self._predictive(xs, mean[:, :-1], k[:, :-1], beta[:, :-1], j[:-1].unsqueeze(-1)).sum(-1)

    def conditional_log_prob(self, context: Tensor, query: Tensor) -> Tensor:
        """log p(query_q | context) for each query separately: context [batch, n, dim] (n may be 0),
        query [batch, q, dim] -> [batch, q]."""
        query = self._check(query, "query")
        mean, k, beta, j = self.prefix_stats(context)
        if query.dim() != 3 or query.shape[0] != context.shape[0]:
            raise BadInputError(f"query: expected shape [{context.shape[0]}, q, {self.dim}], found {list(query.shape)}")
        last = slice(-1, None)
        return self._predictive(query, mean[:, last], k[:, last], beta[:, last], j[-1]).sum(-1)

    def prior_log_prob(self, x: Tensor) -> Tensor:
        """log p(x) of one element with nothing observed: x [..., dim] -> [...]."""
        x = self._check(x)
        return self._predictive(x, self.mu, self.var, torch.zeros_like(self.mu), 0).sum(-1)


class StudentTProcess(ExchangeableProcess):
    """Exchangeable Student-t process per dimension (BRUNO's TP); nu = exp(c) + 2 is learnt."""

    def __init__(
        self,
        dim: int,
        nu: float | Tensor = 1000.0,
        mu: float | Tensor = 0.0,
        var: float | Tensor = 1.0,
        corr: float | Tensor = 0.1,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(dim, mu, var, corr, dtype)
        nu_t = _per_dim("nu", nu, dim, torch.float64)
        if not (nu_t > 2).all() or not torch.isfinite(nu_t).all():
            raise BadInputError(f"nu must be finite and > 2, got min {nu_t.min().item():g}")
        self.c = nn.Parameter(torch.log(nu_t - 2).to(dtype))  # nu = exp(c) + 2

    @property
    def nu(self) -> Tensor:
        """nu [dim] = exp(c) + 2."""
        return torch.exp(self.c) + 2

    def _predictive(self, x: Tensor, mean: Tensor, k: Tensor, beta: Tensor, n: Tensor | int) -> Tensor:
        nu = self.nu
        var = (nu + beta - 2) / (nu + n - 2) * k  # sigma_n^2
        return student_t_log_prob(x, nu + n, mean, var)

    def _draw(self, shape, mean, k, beta, n, generator):
        nu = self.nu
        df = (nu + n).expand(shape)
        var = (nu + beta - 2) / (nu + n - 2) * k
        z = _randn(shape, generator, mean)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        with torch.random.fork_rng(devices=[]):  # torch's gamma sampler takes no generator
            torch.manual_seed(seed)
            chi2 = 2 * torch._standard_gamma(df.detach().cpu() / 2).to(mean.device)
        t = z / torch.sqrt(chi2 / df)  # standard t_df
        return mean + torch.sqrt(var * (df - 2) / df) * t  # variance var


class GaussianProcess(ExchangeableProcess):
    """Exchangeable Gaussian process per dimension (BRUNO's GP): predictive N(mu_n, k_n)."""

    def __init__(
        self,
        dim: int,
        mu: float | Tensor = 0.0,
        var: float | Tensor = 1.0,
        corr: float | Tensor = 0.1,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__(dim, mu, var, corr, dtype)

    def _predictive(self, x: Tensor, mean: Tensor, k: Tensor, beta: Tensor, n: Tensor | int) -> Tensor:
        return gaussian_log_prob(x, mean, k)

    def _draw(self, shape, mean, k, beta, n, generator):
        return mean + k.sqrt() * _randn(shape, generator, mean)
