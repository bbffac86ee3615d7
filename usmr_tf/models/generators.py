"""US -> MR generators: the inference graphs that `model.generator` exposes and export saves.

- `UNetGenerator`: encoder + decoder with skips (baselines AE, GAN, CycleGAN).
- `AnatomyAwareGenerator`: blocks A (anatomy_encoder), B (us_decoder, only the stages whose
  features feed the attention), C (mr_decoder) and the cross-modal attention of Fig. 2: exactly
  what §2 says is used at test time. With attention at decoder stage `k`, decoder-C is split in
  `mr_decoder` (stages 0..k) -> `cross_modal_attention` -> `mr_decoder_top` (stages k+1.. + head),
  and decoder-B's remaining stages and head (US reconstruction, training only) live in the full
  `AnatomyAwareSynthesis` model. Without attention the generator is A + C only.

Both build all their variables in `__init__` (static `image_size`), so optimizers can be built
right after construction and `.keras` loading finds every variable.
"""

import keras

from usmr_tf.layers.attention import CrossModalAttention
from usmr_tf.layers.seeding import sub_seed
from usmr_tf.layers.unet_blocks import Decoder, Encoder


def check_image_size(image_size, depth):
    image_size, depth = int(image_size), int(depth)
    if depth < 1 or image_size % (2**depth):
        raise ValueError(
            f"image_size ({image_size}) must be divisible by 2**depth (depth={depth})"
        )
    return image_size, depth


class _BuiltInInit(keras.Model):
    """Models whose sub-layers are all built by `_build_components(input_shape)`."""

    def _build_now(self, image_size):
        self.build((None, image_size, image_size, 1))

    def build(self, input_shape):
        if getattr(self, "_components_built", False):  # called again by `.keras` loading
            return
        self._build_components(tuple(input_shape))
        self._components_built = True

    def _build_components(self, input_shape):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="usmr_tf")
class UNetGenerator(_BuiltInInit):
    """`[B, H, W, 1]` -> `[B, H, W, 1]` in [-1, 1] (tanh): Encoder + Decoder with skips."""

    def __init__(self, image_size=128, base_filters=32, depth=4, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.depth = check_image_size(image_size, depth)
        self.base_filters = int(base_filters)
        self.seed = seed
        self.encoder = Encoder(base_filters, depth, seed=sub_seed(seed, "encoder"), name="encoder")
        self.decoder = Decoder(base_filters, depth, seed=sub_seed(seed, "decoder"), name="decoder")
        self._build_now(self.image_size)

    def _build_components(self, input_shape):
        self.encoder.build(input_shape)
        self.decoder.build(self.encoder.compute_output_shape(input_shape))

    def forward(self, x, training=None):
        latent, skips = self.encoder(x, training=training)
        return {"latent": latent, "output": self.decoder((latent, skips), training=training)}

    def call(self, x, training=None):
        return self.forward(x, training=training)["output"]

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size, base_filters=self.base_filters, depth=self.depth, seed=self.seed
        )
        return config


@keras.saving.register_keras_serializable(package="usmr_tf")
class AnatomyAwareGenerator(_BuiltInInit):
    """Inference path A -> (B, C, attention) -> synthesised MR `[B, H, W, 1]` in [-1, 1].

    `attention_level` is the decoder stage (0 = coarsest, right after the first up-conv, at
    `image_size / 2**(depth-1)`; `depth-1` = full resolution) where decoder-B features guide
    decoder-C. The attention map is `N x N` with `N = (image_size / 2**(depth-1-level))**2`.

    `mr_skip_drop` (beyond the paper, default 0): decoder-C receives zeros in place of
    encoder-A's skip connections at its `mr_skip_drop` finest levels (1 = the full-resolution
    one), so the US's fine intensities reach the MR only through the coarser features;
    decoder-B keeps every skip (docs/models.md). The layers keep their shapes.
    """

    def __init__(
        self,
        image_size=128,
        base_filters=32,
        depth=4,
        attention_level=1,
        use_attention=True,
        mr_skip_drop=0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size, self.depth = check_image_size(image_size, depth)
        if isinstance(mr_skip_drop, bool) or int(mr_skip_drop) != mr_skip_drop or not \
                0 <= int(mr_skip_drop) <= self.depth:
            raise ValueError(f"mr_skip_drop must be an integer in [0, depth] = [0, {self.depth}], "
                             f"got {mr_skip_drop!r}")
        self.mr_skip_drop = int(mr_skip_drop)
        self.base_filters = int(base_filters)
        self.attention_level = int(attention_level)
        if not 0 <= self.attention_level < self.depth:
            raise ValueError(
                f"attention_level must be in [0, depth-1] = [0, {self.depth - 1}], got "
                f"{attention_level}"
            )
        self.use_attention = bool(use_attention)
        self.seed = seed
        f, d = self.base_filters, self.depth
        self.anatomy_encoder = Encoder(f, d, seed=sub_seed(seed, "A"), name="anatomy_encoder")
        if self.use_attention:
            k1 = self.attention_level + 1
            self.us_decoder = Decoder(
                f, d, stop_stage=k1, include_head=False, seed=sub_seed(seed, "B"), name="us_decoder"
            )
            self.mr_decoder = Decoder(
                f, d, stop_stage=k1, include_head=False, seed=sub_seed(seed, "C"), name="mr_decoder"
            )
            self.cross_modal_attention = CrossModalAttention(
                seed=sub_seed(seed, "attention"), name="cross_modal_attention"
            )
            self.mr_decoder_top = Decoder(
                f, d, first_stage=k1, seed=sub_seed(seed, "C_top"), name="mr_decoder_top"
            )
        else:
            self.mr_decoder = Decoder(f, d, seed=sub_seed(seed, "C"), name="mr_decoder")
        self._build_now(self.image_size)

    def _build_components(self, input_shape):
        self.anatomy_encoder.build(input_shape)
        enc_shapes = self.anatomy_encoder.compute_output_shape(input_shape)
        self.mr_decoder.build(enc_shapes)
        if self.use_attention:
            self.us_decoder.build(enc_shapes)
            f_shape = self.mr_decoder.compute_output_shape(enc_shapes)
            self.cross_modal_attention.build((f_shape, f_shape))
            self.mr_decoder_top.build((f_shape, enc_shapes[1]))

    def mr_skips(self, skips):
        """The skips decoder-C sees: zeros at the `mr_skip_drop` finest levels (level 0 =
        full resolution), encoder-A's own elsewhere."""
        return [keras.ops.zeros_like(s) if level < self.mr_skip_drop else s
                for level, s in enumerate(skips)]

    def forward(self, us, training=None):
        """Returns `latent` (y), `skips`, `synth_mr` and, with attention, `us_features` (f_U)."""
        latent, skips = self.anatomy_encoder(us, training=training)  # y = F(x_U)
        out = {"latent": latent, "skips": skips}
        mr_skips = self.mr_skips(skips)
        if self.use_attention:
            f_u = self.us_decoder((latent, skips), training=training)  # decoder-B (R-US)
            f_m = self.mr_decoder((latent, mr_skips), training=training)  # decoder-C (S-MR)
            f_m = self.cross_modal_attention([f_u, f_m])
            out["us_features"] = f_u
            out["synth_mr"] = self.mr_decoder_top((f_m, mr_skips), training=training)
        else:
            out["synth_mr"] = self.mr_decoder((latent, mr_skips), training=training)
        return out

    def call(self, us, training=None):
        return self.forward(us, training=training)["synth_mr"]

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            base_filters=self.base_filters,
            depth=self.depth,
            attention_level=self.attention_level,
            use_attention=self.use_attention,
            mr_skip_drop=self.mr_skip_drop,
            seed=self.seed,
        )
        return config
