"""usmr-tf: anatomy-aware US-to-MR synthesis (Jiao et al., MICCAI 2019 workshop) in Keras 3.

Outputs of this package are research images, not diagnoses.
"""

__version__ = "0.1.0"

from usmr_tf.errors import ConfigError, DataError, UsmrError  # noqa: F401


def from_preset(name, version=None):
    """A pretrained inference model by name; see `usmr_tf.presets.from_preset`."""
    from usmr_tf.presets import from_preset as load

    return load(name, version=version)
