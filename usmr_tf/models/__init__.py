"""Synthesis models: `AnatomyAwareSynthesis` (+ ablation flags) and the baselines of Table 1."""

from usmr_tf.models.anatomy_aware import AnatomyAwareSynthesis  # noqa: F401
from usmr_tf.models.autoencoder import AutoEncoder  # noqa: F401
from usmr_tf.models.base import SynthesisModel, default_optimizer  # noqa: F401
from usmr_tf.models.cycle_gan import CycleGAN  # noqa: F401
from usmr_tf.models.generators import AnatomyAwareGenerator, UNetGenerator  # noqa: F401
from usmr_tf.models.plain_gan import PlainGAN  # noqa: F401
from usmr_tf.models.registry import MODELS, build_model  # noqa: F401
