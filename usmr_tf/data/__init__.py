"""Data pipeline: NIfTI/PNG reading, volume <-> slices, HC18 alignment, splits, the slice
cache (`usmr prepare`) and `unpaired_dataset` (tf.data). See docs/data.md.

TensorFlow is only imported by `unpaired_dataset` (lazily), so the NumPy parts stay light.
"""

from usmr_tf.data.cache import load_prepared
from usmr_tf.data.hc18 import Ellipse, fit_ellipse, load_annotation, load_hc18, spatial_normalize
from usmr_tf.data.images import image_to_slice, load_image
from usmr_tf.data.intensity import foreground_mask, normalize_intensity, otsu_threshold
from usmr_tf.data.nifti import Volume, load_mask, load_volume, save_volume
from usmr_tf.data.phantoms import LABELS, generate_phantoms, unpaired_phantoms, write_phantom_volumes
from usmr_tf.data.prepare import prepare_dataset
from usmr_tf.data.splits import split_items, split_subjects
from usmr_tf.data.square import SquareFit, fit_to_square, unfit_square
from usmr_tf.data.volume import SliceGeometry, reorient_to_ras, slices_to_volume, volume_to_slices


def unpaired_dataset(*args, **kwargs):
    from usmr_tf.data.pipeline import unpaired_dataset as build

    return build(*args, **kwargs)


unpaired_dataset.__doc__ = "Lazy alias of `usmr_tf.data.pipeline.unpaired_dataset` (imports TF)."

__all__ = [
    "Ellipse", "LABELS", "SliceGeometry", "SquareFit", "Volume", "fit_ellipse", "fit_to_square",
    "foreground_mask", "generate_phantoms", "image_to_slice", "load_annotation", "load_hc18", "load_image",
    "load_mask", "load_prepared", "load_volume", "normalize_intensity", "otsu_threshold",
    "prepare_dataset", "reorient_to_ras", "save_volume", "slices_to_volume", "split_items",
    "split_subjects", "spatial_normalize", "unfit_square", "unpaired_dataset", "unpaired_phantoms", "write_phantom_volumes",
    "volume_to_slices",
]
