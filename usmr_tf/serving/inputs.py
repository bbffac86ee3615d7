"""Checks shared by the gRPC and REST clients, run before anything is sent."""

import numpy as np

from usmr_tf.serving.errors import InvalidInputError


def check_us_batch(us_image, image_size=None):
    """float32 ``[B, H, W, 1]`` in [-1, 1]; a single ``[H, W, 1]`` image gets a batch axis.

    Raises:
        InvalidInputError: wrong rank, channel count or size (when ``image_size`` is known),
            empty batch, or NaN / Inf values.
    """
    x = np.asarray(us_image, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 1 or x.shape[0] == 0:
        raise InvalidInputError(
            f"us_image has shape {tuple(np.shape(us_image))}: expected [batch, H, W, 1] "
            "(greyscale, channels last) with batch >= 1"
        )
    if image_size is not None and x.shape[1:3] != (image_size, image_size):
        raise InvalidInputError(
            f"us_image is {x.shape[1]}x{x.shape[2]}: this model expects "
            f"{image_size}x{image_size} (see usmr.json image_size)"
        )
    if not np.isfinite(x).all():
        raise InvalidInputError("us_image contains NaN or Inf values")
    return x


def check_encoded_images(images):
    """A non-empty list of PNG/JPEG ``bytes``."""
    if isinstance(images, (bytes, bytearray)):
        images = [images]
    images = [bytes(image) for image in images]
    if not images or any(len(image) == 0 for image in images):
        raise InvalidInputError("expected a non-empty list of non-empty PNG/JPEG byte strings")
    return images
