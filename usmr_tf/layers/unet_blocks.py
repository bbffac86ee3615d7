"""U-Net encoder and decoder blocks (§3.1: "simple conv, up-conv and max-pooling layers; skip
connections between each encoder-decoder pair").

Shapes, for an input `[B, H, W, C]`, `base_filters=f`, `depth=d`:
- `Encoder` level `l` (0..d-1): conv-IN-ReLU x2 with `f * 2**l` filters -> skip `l`
  `[B, H/2**l, W/2**l, f*2**l]`, then 2x2 max-pool. Bottleneck: conv-IN-ReLU x2 with `f * 2**d`
  filters -> latent `[B, H/2**d, W/2**d, f*2**d]` (the anatomical feature `y` of the paper).
- `Decoder` stage `i` (0..d-1) works at level `l = d-1-i`: 2x2 up-conv (stride 2) to
  `f*2**l` channels, concatenation with skip `l`, conv-IN-ReLU x2 -> `[B, H/2**l, W/2**l, f*2**l]`.
  The head is a 1x1 conv + tanh (float32) -> `[B, H, W, out_channels]` in [-1, 1].
  A `Decoder` may hold only a range of stages (`first_stage`, `stop_stage`) and optionally the
  head, so a decoder can be split around the cross-modal attention (see `models/generators.py`).
"""

import keras

from usmr_tf.layers.normalization import instance_norm
from usmr_tf.layers.seeding import kernel_initializer, sub_seed


def _scale(dim, factor):
    return None if dim is None else int(dim * factor)


@keras.saving.register_keras_serializable(package="usmr_tf")
class ConvBlock(keras.layers.Layer):
    """`num_convs` x (3x3 conv -> instance norm -> activation), spatial size preserved."""

    def __init__(self, filters, num_convs=2, kernel_size=3, activation="relu", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.num_convs = int(num_convs)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.seed = seed
        self.convs, self.norms, self.acts = [], [], []
        for i in range(self.num_convs):
            self.convs.append(
                keras.layers.Conv2D(
                    self.filters,
                    self.kernel_size,
                    padding="same",
                    use_bias=False,  # the instance norm's beta is the bias
                    kernel_initializer=kernel_initializer(seed, "conv", i),
                    name=f"conv{i}",
                )
            )
            self.norms.append(instance_norm(name=f"norm{i}"))
            self.acts.append(keras.layers.Activation(activation, name=f"act{i}"))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = shape[:-1] + (self.filters,)
            norm.build(shape)

    def call(self, x, training=None):
        for conv, norm, act in zip(self.convs, self.norms, self.acts):
            x = act(norm(conv(x), training=training))
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            num_convs=self.num_convs,
            kernel_size=self.kernel_size,
            activation=self.activation,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package="usmr_tf")
class Encoder(keras.layers.Layer):
    """U-Net encoder: returns `(latent, skips)` with `skips[l]` the features of level `l`."""

    def __init__(self, base_filters=32, depth=4, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(depth) < 1:
            raise ValueError(f"Encoder depth must be >= 1, got {depth}")
        self.base_filters = int(base_filters)
        self.depth = int(depth)
        self.seed = seed
        self.blocks = [
            ConvBlock(self.base_filters * 2**l, seed=sub_seed(seed, "level", l), name=f"level{l}")
            for l in range(self.depth)
        ]
        self.pools = [keras.layers.MaxPooling2D(2, name=f"pool{l}") for l in range(self.depth)]
        self.bottleneck = ConvBlock(
            self.base_filters * 2**self.depth, seed=sub_seed(seed, "bottleneck"), name="bottleneck"
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
            shape = (shape[0], _scale(shape[1], 0.5), _scale(shape[2], 0.5), shape[3])
        self.bottleneck.build(shape)

    def call(self, x, training=None):
        skips = []
        for block, pool in zip(self.blocks, self.pools):
            x = block(x, training=training)
            skips.append(x)
            x = pool(x)
        return self.bottleneck(x, training=training), skips

    def compute_output_shape(self, input_shape):
        b, h, w, _ = tuple(input_shape)
        skips = [
            (b, _scale(h, 0.5**l), _scale(w, 0.5**l), self.base_filters * 2**l)
            for l in range(self.depth)
        ]
        scale = 0.5**self.depth
        latent = (b, _scale(h, scale), _scale(w, scale), self.base_filters * 2**self.depth)
        return latent, skips

    def get_config(self):
        config = super().get_config()
        config.update(base_filters=self.base_filters, depth=self.depth, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="usmr_tf")
class Decoder(keras.layers.Layer):
    """U-Net decoder (or a contiguous range of its stages); input `(x, skips)`.

    `x` is the latent for `first_stage=0`, else the features leaving stage `first_stage-1`.
    `skips` is the full list returned by `Encoder` (indexed by level). Returns the image when
    `include_head`, else the features of the last stage held.
    """

    def __init__(
        self,
        base_filters=32,
        depth=4,
        first_stage=0,
        stop_stage=None,
        include_head=True,
        out_channels=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.base_filters = int(base_filters)
        self.depth = int(depth)
        self.first_stage = int(first_stage)
        self.stop_stage = self.depth if stop_stage is None else int(stop_stage)
        if not 0 <= self.first_stage <= self.stop_stage <= self.depth:
            raise ValueError(
                f"Decoder stages must satisfy 0 <= first_stage <= stop_stage <= depth, got "
                f"first_stage={first_stage}, stop_stage={stop_stage}, depth={depth}"
            )
        self.include_head = bool(include_head)
        self.out_channels = int(out_channels)
        self.seed = seed
        self.ups, self.concats, self.blocks = [], [], []
        for i in self.stages:
            filters = self.stage_filters(i)
            self.ups.append(
                keras.layers.Conv2DTranspose(
                    filters,
                    2,
                    strides=2,
                    padding="same",
                    kernel_initializer=kernel_initializer(seed, "stage", i, "up"),
                    name=f"up{i}",
                )
            )
            self.concats.append(keras.layers.Concatenate(name=f"skip{i}"))
            self.blocks.append(ConvBlock(filters, seed=sub_seed(seed, "stage", i), name=f"stage{i}"))
        if self.include_head:
            self.head = keras.layers.Conv2D(
                self.out_channels,
                1,
                kernel_initializer=kernel_initializer(seed, "head"),
                name="head",
            )
            self.tanh = keras.layers.Activation("tanh", dtype="float32", name="tanh")

    @property
    def stages(self):
        return range(self.first_stage, self.stop_stage)

    def stage_filters(self, stage):
        return self.base_filters * 2 ** (self.depth - 1 - stage)

    def build(self, input_shape):
        x_shape, skip_shapes = input_shape
        x_shape = tuple(x_shape)
        for i, up, block in zip(self.stages, self.ups, self.blocks):
            up.build(x_shape)
            skip = tuple(skip_shapes[self.depth - 1 - i])
            cat = skip[:-1] + (self.stage_filters(i) + skip[-1],)
            block.build(cat)
            x_shape = block.compute_output_shape(cat)
        if self.include_head:
            self.head.build(x_shape)

    def call(self, inputs, training=None):
        x, skips = inputs
        for i, up, concat, block in zip(self.stages, self.ups, self.concats, self.blocks):
            x = concat([up(x), skips[self.depth - 1 - i]])
            x = block(x, training=training)
        if self.include_head:
            x = self.tanh(self.head(x))
        return x

    def compute_output_shape(self, input_shape):
        x_shape, skip_shapes = input_shape
        if self.stop_stage == self.first_stage:
            shape = tuple(x_shape)
        else:
            level = self.depth - self.stop_stage
            shape = tuple(skip_shapes[level])[:-1] + (self.stage_filters(self.stop_stage - 1),)
        if self.include_head:
            shape = shape[:-1] + (self.out_channels,)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            base_filters=self.base_filters,
            depth=self.depth,
            first_stage=self.first_stage,
            stop_stage=self.stop_stage,
            include_head=self.include_head,
            out_channels=self.out_channels,
            seed=self.seed,
        )
        return config
