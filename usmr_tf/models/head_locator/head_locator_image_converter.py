"""Raw image of any size -> the locator's fixed input frame, and back (keras-hub's image converter).

A ``HeadLocatorImageConverter`` letterboxes a greyscale image into ``height x width``: it is
scaled by ``s = min(height / h, width / w)`` (bilinear, anti-aliased), centred, and the rest is
padded with -1 (black). Grey levels map ``g -> g / 127.5 - 1`` (8-bit) so that the same PNG
bytes give the same input in ``usmr locate`` and in the raw-PNG serving signature. Coordinates
move between the two frames with :meth:`to_image` (map pixels -> image pixels).

Everything is TF ops: the converter runs eagerly in the CLI and inside the exported graph.
"""

import keras
import numpy as np
import tensorflow as tf

DEFAULT_HEIGHT, DEFAULT_WIDTH = 224, 320


@keras.saving.register_keras_serializable(package="usmr_tf")
class HeadLocatorImageConverter(keras.layers.Layer):
    """``[h, w]`` / ``[h, w, 1]`` grey image (0-255) -> (``[H, W, 1]`` float32 in [-1, 1], geometry).

    geometry = float32 ``[5]``: (scale, top, left, h, w): map pixel (x', y') shows image
    pixel ``((x' - left) / scale, (y' - top) / scale)``.
    """

    def __init__(self, height=DEFAULT_HEIGHT, width=DEFAULT_WIDTH, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)

    def call(self, image):
        image = tf.convert_to_tensor(image)
        if image.shape.rank == 2:
            image = image[..., None]
        image = tf.cast(image, tf.float32)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        scale = tf.minimum(self.height / hf, self.width / wf)
        nh = tf.clip_by_value(tf.cast(tf.round(hf * scale), tf.int32), 1, self.height)
        nw = tf.clip_by_value(tf.cast(tf.round(wf * scale), tf.int32), 1, self.width)
        resized = tf.image.resize(image, tf.stack([nh, nw]), method="bilinear", antialias=True)
        top, left = (self.height - nh) // 2, (self.width - nw) // 2
        grey = resized / 127.5 - 1.0
        padded = tf.pad(grey + 1.0, [[top, self.height - nh - top], [left, self.width - nw - left],
                                     [0, 0]]) - 1.0
        padded = tf.clip_by_value(tf.ensure_shape(padded, [self.height, self.width, 1]), -1.0, 1.0)
        # Scale per axis after rounding, so the valid area maps exactly onto the image.
        geometry = tf.stack([tf.cast(nw, tf.float32) / wf, tf.cast(top, tf.float32),
                             tf.cast(left, tf.float32), hf, wf])
        return padded, geometry

    def valid_mask(self, geometry):
        """Bool ``[H, W]``: the map pixels that show the image (not the padding)."""
        geometry = tf.convert_to_tensor(geometry)
        scale, top, left, h, w = tf.unstack(geometry)
        nh, nw = tf.round(h * scale), tf.round(w * scale)
        rows = tf.range(self.height, dtype=tf.float32)[:, None]
        cols = tf.range(self.width, dtype=tf.float32)[None, :]
        return (rows >= top) & (rows < top + nh) & (cols >= left) & (cols < left + nw)

    @staticmethod
    def to_image(geometry, x, y, length=None):
        """Map coordinates (x, y) [and a length] -> image pixel coordinates (NumPy)."""
        scale, top, left = (float(g) for g in np.asarray(geometry)[:3])
        # Pixel centres: map pixel j covers image [j / s, (j + 1) / s): centre (j + 0.5) / s - 0.5.
        out = ((x - left + 0.5) / scale - 0.5, (y - top + 0.5) / scale - 0.5)
        return out if length is None else out + (length / scale,)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}
