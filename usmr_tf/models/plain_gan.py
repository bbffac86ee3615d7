"""`PlainGAN` baseline (Table 1 "GAN"): a US -> MR U-Net generator and one appearance
discriminator D_app, adversarial loss only (no L1: the data are unpaired, so there is no pixel
target; nothing ties the output to the input anatomy except the generator's skips)."""

import keras

from usmr_tf.layers.seeding import sub_seed
from usmr_tf.models.base import SynthesisModel
from usmr_tf.models.gan_losses import discriminator_adversarial_loss, generator_adversarial_loss
from usmr_tf.models.generators import UNetGenerator


@keras.saving.register_keras_serializable(package="usmr_tf")
class PlainGAN(SynthesisModel):
    def __init__(self, image_size=128, base_filters=32, depth=4, gan_loss="lsgan", **kwargs):
        kwargs.pop("lambda_rec", None)  # no reconstruction term
        super().__init__(
            image_size=image_size, base_filters=base_filters, depth=depth, gan_loss=gan_loss, **kwargs
        )
        self.generator = UNetGenerator(
            self.image_size, self.base_filters, self.depth, seed=sub_seed(self.seed, "generator"),
            name="generator",
        )
        self.appearance_discriminator = self._patch_discriminator("appearance_discriminator")
        self._finish_init()

    def _build_components(self, input_shape):
        self.appearance_discriminator.build(input_shape)

    @property
    def discriminators(self):
        return [self.appearance_discriminator]

    def _term_names(self):
        return ["loss_app"], ["d_app"]

    def compute_loss_terms(self, us, mr, training=False):
        self._require_mr(mr)
        synth = self.generator(us, training=training)
        real = self.appearance_discriminator(mr, training=training)
        fake = self.appearance_discriminator(synth, training=training)
        g = {"loss_app": (1.0, [generator_adversarial_loss(fake, self.gan_loss)])}  # Eq. 3
        d = {"d_app": (1.0, list(discriminator_adversarial_loss(real, fake, self.gan_loss)))}
        return g, d, {"synth_mr": synth}

    def get_config(self):
        config = super().get_config()
        config.pop("lambda_rec")
        return config
