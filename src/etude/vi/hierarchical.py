"""Multi-level models of the paper's experiments, on synthetic data drawn from the model.

Buchholz, Wenzel, Mandt, ICML 2018 (arXiv:1807.01604), Sec. 5 fits a hierarchical linear
regression and a multi-level Poisson GLM (Gelman and Hill's stop-and-frisk data, which we cannot
download); here both models keep their structure and draw their data from the prior predictive
with a fixed ``data_seed``, so the posterior is the same on every run.
Scale latents are unconstrained log-scales with N(0, 1) priors (log-normal scales).
"""

from __future__ import annotations

import torch

from etude.validation import check_int
from etude.vi.densities import normal_log_prob, normal_log_prob_log_scale
from etude.vi.models import Model

__all__ = ["HierarchicalLinearRegression", "PoissonGLM"]


class HierarchicalLinearRegression(Model):
    """y_i ~ N(a_{g(i)} + b_{g(i)} x_i, s_y^2), a_j ~ N(mu_a, s_a^2), b_j ~ N(mu_b, s_b^2).

    z = (mu_a, mu_b, log s_a, log s_b, log s_y, a [J], b [J]), d = 5 + 2J (J = 50: d = 105);
    mu ~ N(0, 1), log s ~ N(0, 1). Data: ``per_group`` points per group, x ~ N(0, 1), drawn from
    the model with hyperparameters (mu_a, mu_b, s_a, s_b, s_y) = (0.5, -0.3, 0.8, 0.5, 0.5).
    """

    name = "hierarchical"

    def __init__(self, groups: int = 50, per_group: int = 10, data_seed: int = 0) -> None:
        self.groups = check_int("groups", groups, 1)
        self.per_group = check_int("per_group", per_group, 1)
        gen = torch.Generator().manual_seed(check_int("data_seed", data_seed, 0))
        a = 0.5 + 0.8 * torch.randn(groups, generator=gen, dtype=torch.float64)
        b = -0.3 + 0.5 * torch.randn(groups, generator=gen, dtype=torch.float64)
        self.group = torch.arange(groups).repeat_interleave(per_group)  # g(i) [n]
        self.x = torch.randn(groups * per_group, generator=gen, dtype=torch.float64)
        noise = 0.5 * torch.randn(groups * per_group, generator=gen, dtype=torch.float64)
        self.y = a[self.group] + b[self.group] * self.x + noise
        self.dim = 5 + 2 * groups

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        j = self.groups
        mu_a, mu_b, log_sa, log_sb, log_sy = z[..., 0], z[..., 1], z[..., 2], z[..., 3], z[..., 4]
        a, b = z[..., 5 : 5 + j], z[..., 5 + j :]
        hyper = normal_log_prob(z[..., :5], 0.0, 1.0).sum(-1)  # mu_a, mu_b, log s_a, log s_b, log s_y
        groups = normal_log_prob_log_scale(a, mu_a.unsqueeze(-1), log_sa.unsqueeze(-1)).sum(
            -1
        ) + normal_log_prob_log_scale(b, mu_b.unsqueeze(-1), log_sb.unsqueeze(-1)).sum(-1)
        mean = a[..., self.group] + b[..., self.group] * self.x.to(z.dtype)  # [..., n]
        lik = normal_log_prob_log_scale(self.y.to(z.dtype), mean, log_sy.unsqueeze(-1)).sum(-1)
        return hyper + groups + lik

    def initial_loc(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.zeros(self.dim, dtype=torch.float64)


class PoissonGLM(Model):
    """Counts y_ab ~ Poisson(n_ab exp(mu + alpha_a + beta_b)) over A x B cells (two crossed levels).

    alpha_a ~ N(0, s_alpha^2), beta_b ~ N(0, s_beta^2), mu ~ N(0, 2^2), log s ~ N(0, 1);
    z = (mu, log s_alpha, log s_beta, alpha [A], beta [B]), d = 3 + A + B (A = 3, B = 27: d = 33),
    like stop-and-frisk counts per ethnicity a and precinct b with exposures n_ab.
    Data: log n_ab ~ N(3, 0.5^2), mu = -1, s_alpha = 0.5, s_beta = 0.8.
    """

    name = "poisson"

    def __init__(self, levels_a: int = 3, levels_b: int = 27, data_seed: int = 0) -> None:
        self.levels_a = check_int("levels_a", levels_a, 1)
        self.levels_b = check_int("levels_b", levels_b, 1)
        gen = torch.Generator().manual_seed(check_int("data_seed", data_seed, 0))
        alpha = 0.5 * torch.randn(levels_a, generator=gen, dtype=torch.float64)
        beta = 0.8 * torch.randn(levels_b, generator=gen, dtype=torch.float64)
        self.cell_a = torch.arange(levels_a).repeat_interleave(levels_b)  # a(i) [A*B]
        self.cell_b = torch.arange(levels_b).repeat(levels_a)  # b(i)
        self.log_exposure = 3.0 + 0.5 * torch.randn(levels_a * levels_b, generator=gen, dtype=torch.float64)
        rate = (self.log_exposure - 1.0 + alpha[self.cell_a] + beta[self.cell_b]).exp()
        self.y = torch.poisson(rate, generator=gen)
        self._log_factorial = float(torch.lgamma(self.y + 1.0).sum())  # sum log y!
        self.dim = 3 + levels_a + levels_b

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        a = self.levels_a
        mu, log_sa, log_sb = z[..., 0], z[..., 1], z[..., 2]
        alpha, beta = z[..., 3 : 3 + a], z[..., 3 + a :]
        prior = (
            normal_log_prob(mu, 0.0, 2.0)
            + normal_log_prob(z[..., 1:3], 0.0, 1.0).sum(-1)
            + normal_log_prob_log_scale(alpha, 0.0, log_sa.unsqueeze(-1)).sum(-1)
            + normal_log_prob_log_scale(beta, 0.0, log_sb.unsqueeze(-1)).sum(-1)
        )
        eta = self.log_exposure.to(z.dtype) + mu.unsqueeze(-1) + alpha[..., self.cell_a] + beta[..., self.cell_b]
        y = self.y.to(z.dtype)
        lik = (y * eta - eta.exp()).sum(-1) - self._log_factorial  # log Poisson(y; e^eta)
        return prior + lik

    def initial_loc(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """mu at the log of the mean rate per exposure (the rest 0), so the first steps are not huge."""
        loc = torch.zeros(self.dim, dtype=torch.float64)
        loc[0] = float((self.y.sum() / self.log_exposure.exp().sum()).log())
        return loc
