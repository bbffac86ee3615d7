"""`CycleGAN` baseline (Table 1, Zhu et al. 2017) built from the shared blocks.

Generators G (US -> MR, `generator`, exported) and F (MR -> US, `back_generator`), discriminators
D_MR (`appearance_discriminator`) and D_US (`back_appearance_discriminator`). Terms:
`loss_app` = GAN(D_MR, G(us)), `loss_app_back` = GAN(D_US, F(mr)),
`loss_cycle` = |F(G(us)) - us|_1 + |G(F(mr)) - mr|_1 (weight `lambda_rec` = 10) and, with
`use_identity`, `loss_identity` = |G(mr) - mr|_1 + |F(us) - us|_1 (weight
`identity_weight * lambda_rec`, 0.5 * 10 as in the CycleGAN paper).

Options beyond the Table 1 baseline (defaults keep it as it was):

- `generator="resnet9"` (or `"resnet6"`): the CycleGAN paper's `ResnetGenerator` (c7s1-f, d2f,
  d4f, 9 (6) residual blocks, u2f, uf, c7s1-1 tanh; `base_filters` = ngf, `depth` = number of
  stride-2 downsamplings, 2 in the paper) instead of the U-Net;
- `discriminator="patchgan70"`: the peer's 3-layer 70x70 PatchGAN (`PatchGAN70`, `disc_filters`
  = ndf) instead of `PatchDiscriminator`;
- `pool_size=50`: each discriminator's fake half is drawn from an `ImagePool` history of
  generated images (the generator terms still use the current fakes).

`recipes/cyclegan_resnet9.yaml` sets all three plus the identity term: the configuration of
junyanz/pytorch-CycleGAN-and-pix2pix's CycleGAN.
"""

import keras

from usmr_tf.layers.image_pool import ImagePool
from usmr_tf.layers.resnet_blocks import PatchGAN70
from usmr_tf.layers.seeding import sub_seed
from usmr_tf.models.base import SynthesisModel
from usmr_tf.models.gan_losses import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    l1_per_example,
)
from usmr_tf.models.generators import UNetGenerator
from usmr_tf.models.resnet_generator import ResnetGenerator

GENERATORS = ("unet", "resnet9", "resnet6")
DISCRIMINATORS = ("patch", "patchgan70")


@keras.saving.register_keras_serializable(package="usmr_tf")
class CycleGAN(SynthesisModel):
    reconstruction_term = "loss_cycle"

    def __init__(
        self,
        image_size=128,
        base_filters=32,
        depth=4,
        lambda_rec=10.0,
        use_identity=False,
        identity_weight=0.5,
        gan_loss="lsgan",
        generator="unet",
        discriminator="patch",
        pool_size=0,
        **kwargs,
    ):
        if generator not in GENERATORS:
            raise ValueError(f"generator must be one of {GENERATORS}, got {generator!r}")
        if discriminator not in DISCRIMINATORS:
            raise ValueError(
                f"discriminator must be one of {DISCRIMINATORS}, got {discriminator!r}"
            )
        if int(pool_size) < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        super().__init__(
            image_size=image_size,
            base_filters=base_filters,
            depth=depth,
            lambda_rec=lambda_rec,
            gan_loss=gan_loss,
            **kwargs,
        )
        self.use_identity = bool(use_identity)
        self.identity_weight = float(identity_weight)
        self.generator_type = generator
        self.discriminator_type = discriminator
        self.pool_size = int(pool_size)
        if self.disc_scales > 1 and discriminator != "patch":
            raise ValueError(
                f"disc_scales={self.disc_scales} works with discriminator='patch' only, got "
                f"{discriminator!r}"
            )
        self.generator = self._make_generator("G", "generator")
        self.back_generator = self._make_generator("F", "back_generator")
        self.appearance_discriminator = self._make_discriminator("appearance_discriminator")
        self.back_appearance_discriminator = self._make_discriminator(
            "back_appearance_discriminator"
        )
        if self.pool_size:
            self.fake_mr_pool = ImagePool(self.pool_size, seed=sub_seed(self.seed, "pool_mr"),
                                          name="fake_mr_pool")
            self.fake_us_pool = ImagePool(self.pool_size, seed=sub_seed(self.seed, "pool_us"),
                                          name="fake_us_pool")
        self._finish_init()

    def _make_generator(self, key, name):
        seed = sub_seed(self.seed, key)
        if self.generator_type == "unet":
            return UNetGenerator(
                self.image_size, self.base_filters, self.depth, seed=seed, name=name
            )
        blocks = int(self.generator_type[len("resnet"):])
        return ResnetGenerator(
            self.image_size, self.base_filters, num_blocks=blocks,
            num_downsampling=self.depth, seed=seed, name=name,
        )

    def _make_discriminator(self, name):
        if self.discriminator_type == "patch":
            return self._patch_discriminator(name)
        return PatchGAN70(self.disc_filters, seed=sub_seed(self.seed, name), name=name)

    def _build_components(self, input_shape):
        self.appearance_discriminator.build(input_shape)
        self.back_appearance_discriminator.build(input_shape)
        if self.pool_size:
            self.fake_mr_pool.build(input_shape)
            self.fake_us_pool.build(input_shape)

    @property
    def discriminators(self):
        return [self.appearance_discriminator, self.back_appearance_discriminator]

    def _term_names(self):
        g = ["loss_app", "loss_app_back", "loss_cycle"]
        g += ["loss_identity"] if self.use_identity else []
        return g, ["d_app", "d_app_back"]

    def compute_loss_terms(self, us, mr, training=False):
        self._require_mr(mr)
        form, lam = self.gan_loss, self.lambda_rec
        synth_mr = self.generator(us, training=training)  # G(us)
        fake_us = self.back_generator(mr, training=training)  # F(mr)
        cycle_us = self.back_generator(synth_mr, training=training)  # F(G(us))
        cycle_mr = self.generator(fake_us, training=training)  # G(F(mr))
        real_m = self.appearance_discriminator(mr, training=training)
        fake_m = self.appearance_discriminator(synth_mr, training=training)
        real_u = self.back_appearance_discriminator(us, training=training)
        fake_u = self.back_appearance_discriminator(fake_us, training=training)
        g = {
            "loss_app": (1.0, [generator_adversarial_loss(fake_m, form)]),
            "loss_app_back": (1.0, [generator_adversarial_loss(fake_u, form)]),
            "loss_cycle": (lam, [l1_per_example(cycle_us, us), l1_per_example(cycle_mr, mr)]),
        }
        if self.use_identity:
            g["loss_identity"] = (
                self.identity_weight * lam,
                [
                    l1_per_example(self.generator(mr, training=training), mr),
                    l1_per_example(self.back_generator(us, training=training), us),
                ],
            )
        if self.pool_size and training:
            # The discriminators' fake halves come from the histories (no gradient to G).
            fake_m = self.appearance_discriminator(
                self.fake_mr_pool(synth_mr, training=training), training=training
            )
            fake_u = self.back_appearance_discriminator(
                self.fake_us_pool(fake_us, training=training), training=training
            )
        d = {
            "d_app": (1.0, list(discriminator_adversarial_loss(real_m, fake_m, form))),
            "d_app_back": (1.0, list(discriminator_adversarial_loss(real_u, fake_u, form))),
        }
        return g, d, {"synth_mr": synth_mr, "recon_us": cycle_us}

    def preview_images(self, us):
        synth = self.generator(us, training=False)
        return {"us": us, "recon_us": self.back_generator(synth, training=False), "synth_mr": synth}

    def get_config(self):
        config = super().get_config()
        config.update(
            use_identity=self.use_identity,
            identity_weight=self.identity_weight,
            generator=self.generator_type,
            discriminator=self.discriminator_type,
            pool_size=self.pool_size,
        )
        return config
