"""Blocks of the CycleGAN ResNet generator and 70x70 PatchGAN (Zhu et al. 2017; the layout of
junyanz/pytorch-CycleGAN-and-pix2pix `ResnetGenerator` / `NLayerDiscriminator`).

- `ReflectionPad2D`: reflection padding of H and W (`torch.nn.ReflectionPad2d`).
- `ResnetBlock`: x + [reflect-pad 1, 3x3 conv, IN, ReLU, reflect-pad 1, 3x3 conv, IN](x).
- `PatchGAN70`: 4x4 convs with padding 1: C64 (no norm) -> C128 -> C256 (stride 2) -> C512
  (stride 1) -> 1 logit channel (stride 1), LeakyReLU(0.2); a 128x128 input gives 14x14
  logits, each seeing a 70x70 patch.

Instance norm is `InstanceNormalization` (= `GroupNormalization(groups=-1)`) without affine
parameters (the peer's `InstanceNorm2d(affine=False)`); convs keep their bias (the peer's `use_bias=True` with
instance norm); weights N(0, 0.02) (the peer's `init_type="normal"`).
"""

import keras
from keras import ops

from usmr_tf.layers.normalization import instance_norm
from usmr_tf.layers.seeding import sub_seed


def normal_init(seed, *path):
    """N(0, 0.02), the CycleGAN weight initialisation, seeded per sub-layer."""
    return keras.initializers.RandomNormal(0.0, 0.02, seed=sub_seed(seed, *path))


def plain_instance_norm(name=None):
    """Instance norm without affine parameters (`InstanceNorm2d(affine=False)`)."""
    return instance_norm(name=name, affine=False)


@keras.saving.register_keras_serializable(package="usmr_tf")
class SingleOutputConv2D(keras.layers.Conv2D):
    """A stride-1 "valid" `Conv2D` with ONE output channel, computed as a matmul + shifted sum.

    oneDNN's convolution kernels block output channels by 16: with one output channel (the
    7x7 64->1 head of the ResNet generator) the forward ran ~10x slower than the same FLOPs in a
    matmul. Here `x . W^T` gives one channel per kernel tap (`[B, H, W, kh*kw]`, one GEMM) and
    the taps are summed over their shifts. Same kernel variable, result and FLOPs as `Conv2D`.
    """

    def __init__(self, kernel_size, **kwargs):
        kwargs.pop("filters", None)
        super().__init__(1, kernel_size, strides=1, padding="valid", **kwargs)

    def call(self, inputs):
        kh, kw = self.kernel_size
        c = ops.shape(inputs)[-1]
        h = ops.shape(inputs)[1] - kh + 1
        w = ops.shape(inputs)[2] - kw + 1
        taps = ops.reshape(ops.transpose(self.kernel[..., 0], (2, 0, 1)), (c, kh * kw))
        y = ops.matmul(inputs, ops.cast(taps, inputs.dtype))  # [B, H+kh-1, W+kw-1, kh*kw]
        out = None
        for i in range(kh):
            for j in range(kw):
                part = y[:, i : i + h, j : j + w, i * kw + j : i * kw + j + 1]
                out = part if out is None else out + part
        if self.use_bias:
            out = out + ops.cast(self.bias, out.dtype)
        return out

    def get_config(self):
        config = super().get_config()
        for key in ("filters", "strides", "padding"):
            config.pop(key, None)
        return config


@keras.saving.register_keras_serializable(package="usmr_tf")
class ReflectionPad2D(keras.layers.Layer):
    """Reflection padding of `padding` pixels on each side of H and W (NHWC)."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        grow = lambda d: None if d is None else d + 2 * self.padding  # noqa: E731
        return (b, grow(h), grow(w), c)

    def get_config(self):
        config = super().get_config()
        config.update(padding=self.padding)
        return config


@keras.saving.register_keras_serializable(package="usmr_tf")
class ResnetBlock(keras.layers.Layer):
    """`x + conv-IN-ReLU-conv-IN(x)` with 3x3 reflection-padded convs, `filters` channels."""

    def __init__(self, filters, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.seed = seed
        self.pad = ReflectionPad2D(1, name="pad")
        self.conv0 = keras.layers.Conv2D(
            self.filters, 3, kernel_initializer=normal_init(seed, "conv0"), name="conv0"
        )
        self.norm0 = plain_instance_norm(name="norm0")
        self.conv1 = keras.layers.Conv2D(
            self.filters, 3, kernel_initializer=normal_init(seed, "conv1"), name="conv1"
        )
        self.norm1 = plain_instance_norm(name="norm1")

    def build(self, input_shape):
        padded = self.pad.compute_output_shape(tuple(input_shape))
        self.conv0.build(padded)
        self.norm0.build(tuple(input_shape)[:-1] + (self.filters,))
        self.conv1.build(padded[:-1] + (self.filters,))
        self.norm1.build(tuple(input_shape)[:-1] + (self.filters,))

    def call(self, x, training=None):
        y = ops.relu(self.norm0(self.conv0(self.pad(x)), training=training))
        y = self.norm1(self.conv1(self.pad(y)), training=training)
        return x + y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="usmr_tf")
class PatchGAN70(keras.layers.Layer):
    """The peer's `NLayerDiscriminator(ndf, n_layers=3)`: `[B, H, W, C]` -> `[B, H/8-2, W/8-2, 1]`."""

    def __init__(self, filters=64, num_layers=3, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.num_layers = int(num_layers)
        self.seed = seed
        self.pad = keras.layers.ZeroPadding2D(1, name="pad")
        self.convs, self.norms = [], []
        n = self.num_layers
        for i in range(n + 2):
            last = i == n + 1
            self.convs.append(
                keras.layers.Conv2D(
                    1 if last else self.filters * min(2**i, 8),
                    4,
                    strides=2 if i < n else 1,
                    kernel_initializer=normal_init(seed, "conv", i),
                    name=f"conv{i}",
                )
            )
            self.norms.append(plain_instance_norm(f"norm{i}") if 0 < i <= n else None)
        self.act = keras.layers.LeakyReLU(0.2, name="lrelu")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv, norm in zip(self.convs, self.norms):
            shape = self.pad.compute_output_shape(shape)
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if norm is not None:
                norm.build(shape)

    def call(self, x, training=None):
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = conv(self.pad(x))
            if i == len(self.convs) - 1:
                break
            if norm is not None:
                x = norm(x, training=training)
            x = self.act(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.convs:
            shape = conv.compute_output_shape(self.pad.compute_output_shape(shape))
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, num_layers=self.num_layers, seed=self.seed)
        return config
