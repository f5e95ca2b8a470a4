"""Meta-amortized inference over families of distributions (MetaVAE, Wu et al. AAAI 2020).

Import what you need from here::

    from etude.meta import MetaVAE, fit, sample_mog_family
    family = sample_mog_family(100)
    model = MetaVAE(x_dim=2, z_dim=1, n_distributions=100, hidden=64)
    fit(model, family.x, steps=500, lr=1e-3)
    codes = model.encode(new_x, context=new_x)   # a new distribution: no gradient step

Models share one interface (`SetModel`): `elbo`, `loss`, `encode`, `log_likelihood`.
"""

from etude.meta.base import ElboTerms, SetModel
from etude.meta.datasets import (
    SPLIT_STYLES,
    TRANSFORMS,
    Batch,
    MogFamily,
    MogRecipe,
    load_digit_images,
    sample_batch,
    sample_mog_family,
    split_values,
    transform_images,
    transformation_family,
)
from etude.meta.elbo import (
    LIKELIHOODS,
    bernoulli_log_prob,
    gaussian_kl,
    gaussian_log_prob,
    importance_log_likelihood,
    masked_mean,
    reparameterize,
)
from etude.meta.evaluation import (
    clustering_error,
    code_stability,
    kmeans_labels,
    linear_probe_accuracy,
    paired_difference,
)
from etude.meta.layers import PerDistributionMLP, SetSummary
from etude.meta.metavae import MetaVAE
from etude.meta.statistician import NeuralStatistician
from etude.meta.training import CONTEXT_MODES, fit
from etude.meta.vae import VAE
from etude.meta.vhe import VariationalHomoencoder

__all__ = [
    "CONTEXT_MODES",
    "LIKELIHOODS",
    "SPLIT_STYLES",
    "TRANSFORMS",
    "Batch",
    "ElboTerms",
    "MetaVAE",
    "MogFamily",
    "MogRecipe",
    "NeuralStatistician",
    "PerDistributionMLP",
    "SetModel",
    "SetSummary",
    "VAE",
    "VariationalHomoencoder",
    "bernoulli_log_prob",
    "clustering_error",
    "code_stability",
    "fit",
    "gaussian_kl",
    "gaussian_log_prob",
    "importance_log_likelihood",
    "kmeans_labels",
    "linear_probe_accuracy",
    "load_digit_images",
    "masked_mean",
    "paired_difference",
    "reparameterize",
    "sample_batch",
    "sample_mog_family",
    "split_values",
    "transform_images",
    "transformation_family",
]
