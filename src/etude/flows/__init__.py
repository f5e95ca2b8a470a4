"""Real NVP normalizing flows with exact log-determinants (Dinh et al., ICLR 2017, arXiv:1605.08803).

Written here rather than taken from a flow library: the multi-scale image architecture
(checkerboard/channel masks, squeeze, factor-out) with logit preprocessing is what BRUNO uses,
and each piece below is small and tested against autograd Jacobians::

    from etude.flows import FlowSequence, LogitTransform, RealNVP
    flow = FlowSequence([LogitTransform(levels=17), RealNVP((1, 8, 8))])
    z, log_det = flow(x)          # x [B, 1, 8, 8] -> z [B, 64], log_det [B]
    x_again = flow.inverse(z)
"""

from etude.flows.base import Bijection, Flatten, FlowSequence, Squeeze, check_shape
from etude.flows.coupling import (
    ConvNet,
    MaskedAffineCoupling,
    MLPNet,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
)
from etude.flows.preprocess import LogitTransform, dequantize
from etude.flows.realnvp import DenseRealNVP, RealNVP

__all__ = [
    "Bijection",
    "ConvNet",
    "DenseRealNVP",
    "Flatten",
    "FlowSequence",
    "LogitTransform",
    "MLPNet",
    "MaskedAffineCoupling",
    "RealNVP",
    "Squeeze",
    "alternating_mask",
    "channel_mask",
    "check_shape",
    "checkerboard_mask",
    "dequantize",
]
