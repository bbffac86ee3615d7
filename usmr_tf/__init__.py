"""usmr-tf: anatomy-aware US-to-MR synthesis (Jiao et al., MICCAI 2019 workshop) in Keras 3.

Outputs of this package are research images, not diagnoses.
"""

__version__ = "0.1.0"

from usmr_tf.errors import ConfigError, DataError, UsmrError  # noqa: F401
