"""Normalisation helpers without tensorflow-addons.

- Instance norm is `InstanceNormalization`: `keras.layers.GroupNormalization(groups=-1)` (one
  group per channel, so mean/variance are taken over (H, W) of each channel of each example),
  with the same variables and the same result, computed without reshapes. Keras' layer reshapes
  `[B, H, W, C]` to `[B, H, W, C, 1]` and back with shapes read at run time (`Shape`, `Pack`
  ops), which splits TFLite's XNNPACK graph at every norm and adds ops to every step.
- Spectral norm is `keras.layers.SpectralNormalization` wrapped around a conv (discriminators).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="usmr_tf")
class GroupNormalization(keras.layers.GroupNormalization):
    """Instance norm: `GroupNormalization(groups=-1)` of `[B, H, W, C]` as moments over (H, W).

    Same weights (`gamma`, `beta` of shape `[C]`), same arithmetic (float32 statistics, the
    result cast to the layer's compute dtype), no reshape. Other ranks or axes fall back to
    Keras' `call`. The class keeps Keras' name on purpose: `.weights.h5` / `.keras` files
    address layers held in lists by their class name, so checkpoints written with
    `keras.layers.GroupNormalization(groups=-1)` load into this layer unchanged (and back).
    Use it as `InstanceNormalization` or through `instance_norm()`.
    """

    def __init__(self, epsilon=1e-5, **kwargs):
        kwargs.pop("groups", None)
        super().__init__(groups=-1, epsilon=epsilon, **kwargs)

    def call(self, inputs):
        if len(inputs.shape) != 4 or self.axis not in (-1, 3):
            return super().call(inputs)
        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        mean, variance = ops.moments(x, axes=(1, 2), keepdims=True)
        inv = ops.rsqrt(variance + self.epsilon)
        if self.scale:
            inv = inv * ops.cast(self.gamma, x.dtype)
        res = -mean * inv
        if self.center:
            res = res + ops.cast(self.beta, x.dtype)
        return ops.cast(x * inv + res, self.compute_dtype)


InstanceNormalization = GroupNormalization


def instance_norm(name=None, epsilon=1e-5, affine=True):
    """Instance normalisation, with a learnt per-channel affine (gamma, beta) when `affine`."""
    return InstanceNormalization(epsilon=epsilon, center=affine, scale=affine, name=name)


def maybe_spectral(layer, enabled, name=None):
    """Wraps `layer` in `SpectralNormalization` when `enabled`, else returns it unchanged."""
    if not enabled:
        return layer
    return keras.layers.SpectralNormalization(layer, power_iterations=1, name=name)
