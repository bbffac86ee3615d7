"""`AutoEncoder` baseline (Table 1 "AE"): encoder + decoder trained with the L1 reconstruction
of Eq. 2 only. It never sees MR, so its "synth MR" is its US reconstruction: the baseline shows
what reconstruction alone gives."""

import keras

from usmr_tf.layers.seeding import sub_seed
from usmr_tf.models.base import SynthesisModel
from usmr_tf.models.gan_losses import l1_per_example
from usmr_tf.models.generators import UNetGenerator


@keras.saving.register_keras_serializable(package="usmr_tf")
class AutoEncoder(SynthesisModel):
    reconstruction_term = "loss_lat"

    def __init__(self, image_size=128, base_filters=32, depth=4, seed=None, **kwargs):
        super().__init__(
            image_size=image_size, base_filters=base_filters, depth=depth, seed=seed, **kwargs
        )
        self.generator = UNetGenerator(
            self.image_size, self.base_filters, self.depth, seed=sub_seed(seed, "generator"),
            name="generator",
        )
        self._finish_init()

    def _build_components(self, input_shape):
        pass  # the generator builds itself

    def _term_names(self):
        return ["loss_lat"], []

    def compute_loss_terms(self, us, mr=None, training=False):
        recon = self.generator(us, training=training)
        g = {"loss_lat": (1.0, [l1_per_example(recon, us)])}  # Eq. 2 (the only term)
        return g, {}, {"recon_us": recon, "synth_mr": recon}

    def preview_images(self, us):
        recon = self(us, training=False)
        return {"us": us, "recon_us": recon, "synth_mr": recon}

    def get_config(self):
        config = super().get_config()
        for key in ("lambda_rec", "gan_loss", "disc_filters", "disc_scales", "spectral_norm"):
            config.pop(key)
        return config
