"""Discriminators of Fig. 2 ("four conv layers", §2.3).

- `PatchDiscriminator`: image (or EdgeNet maps) -> patch logits. Used for D_app, D_stru and
  D_app^back. `num_layers` convs: the first `num_layers - 1` are k x k conv (`filters * 2**i`
  channels, capped at 8x) -> instance norm (not on the first layer, nor with spectral norm) ->
  LeakyReLU(0.2); the last is a k x k conv to one logit channel (no activation: the GAN loss
  applies the sigmoid / least squares). Default strides (2, 2, 2, 1): 128^2 -> 16^2 logits.
- `MultiScaleDiscriminator` (beyond the paper, issue 18; `disc_scales` on the models): `scales`
  `PatchDiscriminator`s, scale i on the input average-pooled by 2**i (pix2pixHD, Wang et al.
  2018). One `PatchDiscriminator` sees 46 x 46 px (4x4 kernels, strides 2, 2, 2, 1); at scale 1
  that is ~92 px of the input: most of a 128 px head. Each scale's logits are repeated up to
  scale 0's grid and stacked as channels, so one tensor goes to the GAN losses and their mean
  weighs every scale equally (a repeated logit's mean is the logit).
- `LatentDiscriminator`: D_bi on encoder outputs (the latent `y`, `[B, H/2**d, W/2**d, C]`):
  the same block with 3x3 kernels and stride 1, giving one logit per latent position.
"""

import keras
from keras import ops

from usmr_tf.errors import whole_number
from usmr_tf.layers.normalization import instance_norm, maybe_spectral
from usmr_tf.layers.seeding import kernel_initializer, sub_seed


@keras.saving.register_keras_serializable(package="usmr_tf")
class PatchDiscriminator(keras.layers.Layer):
    """Conv discriminator `[B, H, W, C] -> [B, H', W', 1]` logits.

    With `spectral_norm=True` every conv is wrapped in `keras.layers.SpectralNormalization`
    and the instance norms are dropped on purpose: spectral norm already bounds each layer's
    Lipschitz constant, and SN discriminators are commonly built without a per-activation
    norm (Miyato et al. 2018, SN-GAN), which would otherwise rescale the features and undo
    the constraint. Pass `training=True` while training: that is when SN runs its power
    iteration (updating `vector_u`) and renormalises the kernel; with `training=False` the
    kernel is used as it stands.
    """

    def __init__(
        self,
        filters=64,
        num_layers=4,
        kernel_size=4,
        strides=(2, 2, 2, 1),
        spectral_norm=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.num_layers = int(num_layers)
        self.kernel_size = int(kernel_size)
        strides = [int(strides)] * self.num_layers if isinstance(strides, int) else list(strides)
        if len(strides) != self.num_layers or self.num_layers < 2:
            raise ValueError(
                f"need num_layers >= 2 and one stride per layer, got num_layers={num_layers}, "
                f"strides={strides}"
            )
        self.strides = strides
        self.spectral_norm = bool(spectral_norm)
        self.seed = seed
        self.convs, self.norms = [], []
        for i in range(self.num_layers):
            last = i == self.num_layers - 1
            conv = keras.layers.Conv2D(
                1 if last else self.filters * 2 ** min(i, 3),
                self.kernel_size,
                strides=self.strides[i],
                padding="same",
                kernel_initializer=kernel_initializer(seed, "conv", i),
                name=f"conv{i}",
            )
            self.convs.append(maybe_spectral(conv, self.spectral_norm, name=f"sn_conv{i}"))
            use_norm = 0 < i < self.num_layers - 1 and not self.spectral_norm
            self.norms.append(instance_norm(name=f"norm{i}") if use_norm else None)
        self.act = keras.layers.LeakyReLU(0.2, name="lrelu")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv, norm, s in zip(self.convs, self.norms, self.strides):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if norm is not None:
                norm.build(shape)

    def call(self, x, training=None):
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = conv(x, training=training) if self.spectral_norm else conv(x)
            if i == self.num_layers - 1:
                break
            if norm is not None:
                x = norm(x, training=training)
            x = self.act(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.convs:
            shape = conv.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            num_layers=self.num_layers,
            kernel_size=self.kernel_size,
            strides=list(self.strides),
            spectral_norm=self.spectral_norm,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package="usmr_tf")
class LatentDiscriminator(PatchDiscriminator):
    """D_bi: 3x3, stride-1 `PatchDiscriminator` on latent features (one logit per position)."""

    def __init__(self, filters=64, num_layers=4, kernel_size=3, strides=1, **kwargs):
        super().__init__(
            filters=filters, num_layers=num_layers, kernel_size=kernel_size, strides=strides, **kwargs
        )


@keras.saving.register_keras_serializable(package="usmr_tf")
class MultiScaleDiscriminator(keras.layers.Layer):
    """`scales` `PatchDiscriminator`s on the input pooled 1, 2, ... 2**(scales-1) times:
    `[B, H, W, C] -> [B, H', W', scales]` (H' = scale 0's logit grid).

    `patch`: the `PatchDiscriminator` arguments (filters, num_layers, kernel_size, strides,
    spectral_norm) every scale is built with. Scale 0 gets `seed` itself, so it starts with
    the weights a lone `PatchDiscriminator` of that seed would have. H and W must be divisible
    by `2**(scales-1)` times the product of the strides (every coarser grid then tiles scale 0's).
    """

    def __init__(self, scales=2, patch=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.scales = whole_number(scales, "disc_scales")
        self.patch = dict(patch or {})
        self.seed = seed
        self.discs = [
            PatchDiscriminator(**self.patch, seed=seed if i == 0 else sub_seed(seed, "scale", i),
                               name=f"scale{i}")
            for i in range(self.scales)
        ]

    def _check_shape(self, shape):
        factor = 2 ** (self.scales - 1)
        for s in self.discs[0].strides:
            factor *= s
        for size in shape[1:3]:
            if size is not None and int(size) % factor:
                raise ValueError(
                    f"MultiScaleDiscriminator (disc_scales={self.scales}) needs image sides "
                    f"divisible by {factor}, got {tuple(shape[1:3])}"
                )

    def build(self, input_shape):
        shape = tuple(input_shape)
        self._check_shape(shape)
        for i, d in enumerate(self.discs):
            f = 2**i
            d.build((shape[0], *(None if n is None else n // f for n in shape[1:3]), shape[3]))

    def call(self, x, training=None):
        logits = []
        for i, d in enumerate(self.discs):
            xi = x if i == 0 else ops.average_pool(x, 2**i, strides=2**i, padding="valid")
            li = d(xi, training=training)
            if i:
                li = ops.repeat(ops.repeat(li, 2**i, axis=1), 2**i, axis=2)
            logits.append(li)
        return ops.concatenate(logits, axis=-1)

    def compute_output_shape(self, input_shape):
        shape = self.discs[0].compute_output_shape(tuple(input_shape))
        return shape[:3] + (self.scales,)

    def get_config(self):
        config = super().get_config()
        config.update(scales=self.scales, patch=dict(self.patch), seed=self.seed)
        return config

