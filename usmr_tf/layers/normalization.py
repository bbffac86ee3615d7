"""Normalisation helpers without tensorflow-addons.

- Instance norm is `keras.layers.GroupNormalization(groups=-1)`: one group per channel, so
  mean/variance are taken over (H, W) of each channel of each example.
- Spectral norm is `keras.layers.SpectralNormalization` wrapped around a conv (discriminators).
"""

import keras


def instance_norm(name=None, epsilon=1e-5):
    """Instance normalisation with a learnt per-channel affine (gamma, beta)."""
    return keras.layers.GroupNormalization(groups=-1, epsilon=epsilon, name=name)


def maybe_spectral(layer, enabled, name=None):
    """Wraps `layer` in `SpectralNormalization` when `enabled`, else returns it unchanged."""
    if not enabled:
        return layer
    return keras.layers.SpectralNormalization(layer, power_iterations=1, name=name)
