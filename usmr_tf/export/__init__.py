"""Inference export: SavedModel for TF Serving (inference graph only) and conversions.

Outputs of exported models are research images, not diagnoses.
"""

from usmr_tf.export.metadata import (  # noqa: F401
    METADATA_FILE,
    MR_IMAGE_KEY,
    MR_PNG_KEY,
    PNG_SIGNATURE,
    SERVING_SIGNATURE,
    US_IMAGE_KEY,
    US_PNG_KEY,
    list_versions,
    read_metadata,
    resolve_model_dir,
)
from usmr_tf.export.savedmodel import export_savedmodel  # noqa: F401
