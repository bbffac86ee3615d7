"""Shared blocks of Fig. 2: U-Net encoder/decoder, cross-modal attention, EdgeNet,
discriminators and normalisation helpers."""

from usmr_tf.layers.attention import CrossModalAttention  # noqa: F401
from usmr_tf.layers.discriminators import (  # noqa: F401
    LatentDiscriminator,
    MultiScaleDiscriminator,
    PatchDiscriminator,
)
from usmr_tf.layers.edge_net import EDGE_KERNELS, EdgeNet, FixedKernel  # noqa: F401
from usmr_tf.layers.normalization import instance_norm, maybe_spectral  # noqa: F401
from usmr_tf.layers.unet_blocks import ConvBlock, Decoder, Encoder  # noqa: F401
