"""Representation similarity: CCA, SVCCA, PWCCA and linear CKA, plus activation capture.

Raghu et al. 2017 (SVCCA, arXiv:1706.05806); Morcos, Raghu, Bengio 2018 (PWCCA,
arXiv:1806.05759); Kornblith et al. 2019 (CKA, arXiv:1905.00414). Inputs are shaped
(datapoints n, neurons p), NumPy or torch on any device, computed in float64 by default::

    from etude.similarity import pwcca, svcca, linear_cka, pairwise
    pwcca(acts_a, acts_b)                     # weights from acts_a's neurons; not symmetric
    pairwise([layer1, layer2, layer3], "cka") # (3, 3) matrix, each layer factored once
"""

from etude.similarity._validation import ConstantInputWarning, SmallSampleWarning
from etude.similarity.activations import ActivationCapture, capture_activations, flatten_conv, pool_conv
from etude.similarity.cca import PWCCA_VARIANTS, CCAResult, cca, mean_cca, pwcca, svcca
from etude.similarity.cka import MinibatchCKA, linear_cka
from etude.similarity.pairwise import METRICS, pairwise

__all__ = [
    "METRICS",
    "PWCCA_VARIANTS",
    "ActivationCapture",
    "CCAResult",
    "ConstantInputWarning",
    "MinibatchCKA",
    "SmallSampleWarning",
    "capture_activations",
    "cca",
    "flatten_conv",
    "linear_cka",
    "mean_cca",
    "pairwise",
    "pool_conv",
    "pwcca",
    "svcca",
]
