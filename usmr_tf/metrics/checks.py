"""Input checks shared by the metrics: shapes, finiteness and the `[-1, 1]` range.

Every metric takes images in the project convention (`float32`, `[N, H, W, 1]` or a
single `[H, W]` / `[H, W, 1]` image, intensities in `[-1, 1]`, -1 = background) and
works on `float64 [N, H, W]` internally.
"""

import numpy as np

from usmr_tf.errors import DataError

# Intensities a little outside [-1, 1] (interpolation overshoot) are tolerated.
RANGE_TOLERANCE = 1e-2
# A pixel belongs to the foreground (head) when it is brighter than background + this.
FOREGROUND_THRESHOLD = 0.05


def as_image_batch(images, name="images", check_range=True):
    """Returns `images` as `float64 [N, H, W]` or raises `DataError` naming `name`."""
    array = np.asarray(images)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise DataError(f"expected a numeric image array, got dtype {array.dtype}", name)
    if array.ndim == 4:
        if array.shape[-1] != 1:
            raise DataError(f"expected one channel [N, H, W, 1], got shape {array.shape}", name)
        array = array[..., 0]
    elif array.ndim == 3:
        array = array[None, ..., 0] if array.shape[-1] == 1 else array
    elif array.ndim == 2:
        array = array[None]
    else:
        raise DataError(f"expected rank 2-4 image array, got shape {array.shape}", name)
    if array.shape[0] == 0 or min(array.shape[1:]) < 8:
        raise DataError(
            f"expected at least one image of at least 8x8, got shape {array.shape}", name)
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise DataError("contains NaN or Inf values", name)
    if check_range and (array.min() < -1 - RANGE_TOLERANCE or array.max() > 1 + RANGE_TOLERANCE):
        raise DataError(
            f"expected intensities in [-1, 1], got [{array.min():.3g}, {array.max():.3g}]", name
        )
    return array


def check_same_shape(a, b, names=("a", "b")):
    if a.shape != b.shape:
        raise DataError(f"shape mismatch: {names[0]} {a.shape} vs {names[1]} {b.shape}", names[1])


def foreground_mask(image, threshold=FOREGROUND_THRESHOLD):
    """Boolean head mask of one `[H, W]` image: non-background pixels, holes filled."""
    from scipy import ndimage

    mask = image > -1.0 + threshold
    return ndimage.binary_fill_holes(mask)
