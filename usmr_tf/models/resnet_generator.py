"""`ResnetGenerator`: the CycleGAN generator of Zhu et al. 2017 (Johnson et al. 2016 layout).

c7s1-ngf, d(2 ngf), d(4 ngf) (3x3 stride-2 convs), `num_blocks` `ResnetBlock`s at 4 ngf,
u(2 ngf), u(ngf) (3x3 stride-2 transposed convs), c7s1-1 + tanh (float32). Each conv but the
last is followed by instance norm (no affine) and ReLU; the 7x7 convs use reflection padding 3.
With ngf 64 and 9 blocks this is the peer's `ResnetGenerator(ngf=64, n_blocks=9)` ("resnet_9blocks").
`[B, H, W, 1]` -> `[B, H, W, 1]` in [-1, 1]; H, W divisible by 2**num_downsampling.
"""

import keras

from usmr_tf.layers.resnet_blocks import (
    ReflectionPad2D,
    ResnetBlock,
    SingleOutputConv2D,
    normal_init,
    plain_instance_norm,
)
from usmr_tf.layers.seeding import sub_seed
from usmr_tf.models.generators import _BuiltInInit, check_image_size


@keras.saving.register_keras_serializable(package="usmr_tf")
class ResnetGenerator(_BuiltInInit):
    def __init__(
        self,
        image_size=128,
        base_filters=64,
        num_blocks=9,
        num_downsampling=2,
        out_channels=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size, self.num_downsampling = check_image_size(image_size, num_downsampling)
        self.base_filters = int(base_filters)
        self.num_blocks = int(num_blocks)
        self.out_channels = int(out_channels)
        self.seed = seed
        f = self.base_filters
        conv = keras.layers.Conv2D
        self.stem_pad = ReflectionPad2D(3, name="stem_pad")
        self.stem = conv(f, 7, kernel_initializer=normal_init(seed, "stem"), name="stem")
        self.stem_norm = plain_instance_norm("stem_norm")
        self.downs, self.down_norms = [], []
        for i in range(self.num_downsampling):
            self.downs.append(conv(f * 2 ** (i + 1), 3, strides=2, padding="same",
                                   kernel_initializer=normal_init(seed, "down", i),
                                   name=f"down{i}"))
            self.down_norms.append(plain_instance_norm(f"down_norm{i}"))
        width = f * 2**self.num_downsampling
        self.blocks = [
            ResnetBlock(width, seed=sub_seed(seed, "block", i), name=f"block{i}")
            for i in range(self.num_blocks)
        ]
        self.ups, self.up_norms = [], []
        for i in range(self.num_downsampling):
            self.ups.append(keras.layers.Conv2DTranspose(
                f * 2 ** (self.num_downsampling - 1 - i), 3, strides=2, padding="same",
                kernel_initializer=normal_init(seed, "up", i), name=f"up{i}"))
            self.up_norms.append(plain_instance_norm(f"up_norm{i}"))
        self.head_pad = ReflectionPad2D(3, name="head_pad")
        head_init = normal_init(seed, "head")
        if self.out_channels == 1:  # oneDNN is slow at 1 output channel: see SingleOutputConv2D
            self.head = SingleOutputConv2D(7, kernel_initializer=head_init, name="head")
        else:
            self.head = conv(self.out_channels, 7, kernel_initializer=head_init, name="head")
        self.tanh = keras.layers.Activation("tanh", dtype="float32", name="tanh")
        self.relu = keras.layers.ReLU(name="relu")
        self._build_now(self.image_size)

    def _build_components(self, input_shape):
        b, h, w, c = input_shape
        f = self.base_filters
        self.stem.build((b, h + 6, w + 6, c))
        self.stem_norm.build((b, h, w, f))
        ch = f
        for i, (down, norm) in enumerate(zip(self.downs, self.down_norms)):
            down.build((b, h, w, ch))
            h, w, ch = h // 2, w // 2, f * 2 ** (i + 1)
            norm.build((b, h, w, ch))
        for block in self.blocks:
            block.build((b, h, w, ch))
        for i, (up, norm) in enumerate(zip(self.ups, self.up_norms)):
            up.build((b, h, w, ch))
            h, w, ch = h * 2, w * 2, f * 2 ** (self.num_downsampling - 1 - i)
            norm.build((b, h, w, ch))
        self.head.build((b, h + 6, w + 6, ch))

    def call(self, x, training=None):
        x = self.relu(self.stem_norm(self.stem(self.stem_pad(x)), training=training))
        for down, norm in zip(self.downs, self.down_norms):
            x = self.relu(norm(down(x), training=training))
        for block in self.blocks:
            x = block(x, training=training)
        for up, norm in zip(self.ups, self.up_norms):
            x = self.relu(norm(up(x), training=training))
        return self.tanh(self.head(self.head_pad(x)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.out_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            base_filters=self.base_filters,
            num_blocks=self.num_blocks,
            num_downsampling=self.num_downsampling,
            out_channels=self.out_channels,
            seed=self.seed,
        )
        return config
