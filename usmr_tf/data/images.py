"""2D greyscale images (PNG/JPEG, e.g. HC18 ultrasound): reading and conversion to slices."""

import pathlib
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from usmr_tf.data.intensity import DEFAULT_PERCENTILES, foreground_mask, normalize_intensity
from usmr_tf.data.square import fit_to_square
from usmr_tf.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def is_image(path):
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def load_image(path):
    """Reads a PNG/JPEG as a float32 greyscale array `[H, W]` (raw intensities).

    Colour images are converted to greyscale (PIL "L"); 16-bit images keep their range.

    Raises:
        DataError: naming the file when it is missing, not an image, truncated or empty.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise DataError("no such file", path)
    if path.is_dir():
        raise DataError("expected an image file, found a folder", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                    data = np.asarray(image, dtype=np.float32)
                else:
                    data = np.asarray(image.convert("L"), dtype=np.float32)
    except UnidentifiedImageError:
        raise DataError("not an image file (PIL cannot identify it)", path) from None
    except Exception as exc:  # truncated / corrupt files raise OSError, SyntaxError, ...
        raise DataError(f"cannot read image: {type(exc).__name__}: {exc}", path) from None
    if data.ndim != 2 or min(data.shape) < 2:
        raise DataError(f"expected a 2D greyscale image, got shape {data.shape}", path)
    if float(data.max()) == float(data.min()):
        raise DataError(f"constant image (every pixel is {float(data.min()):g})", path)
    return data


def image_to_slice(image, size=128, *, mask=None, percentiles=DEFAULT_PERCENTILES, path=None):
    """Normalises a 2D image to [-1, 1] and fits it into `size x size` (aspect kept, -1 padding).

    Returns (`[size, size, 1]` float32, transform dict for the slice metadata).
    """
    image = np.asarray(image, dtype=np.float32)
    fg = foreground_mask(image, mask)
    out = normalize_intensity(image, fg, percentiles, path=path, mask_background=mask is not None)
    out, fit = fit_to_square(out[None], size)
    return out[0, ..., None], {"kind": "square_fit", "fit": fit.to_dict()}
