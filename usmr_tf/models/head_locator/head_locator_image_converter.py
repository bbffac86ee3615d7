"""Raw image of any size -> the locator's fixed input frame, and back (keras-hub's image converter).

A ``HeadLocatorImageConverter`` letterboxes a greyscale image into ``height x width``: it is
scaled by ``s = min(height / h, width / w)`` (bilinear, anti-aliased), centred, and the rest is
padded with -1 (black). Grey levels map ``g -> g / 127.5 - 1`` (8-bit) so that the same PNG
bytes give the same input in ``usmr locate`` and in the raw-PNG serving signature. Coordinates
move between the two frames with :meth:`to_image` (map pixels -> image pixels).

A ``HeadLocatorCanonicalConverter`` makes the refinement pass's frame from a first ellipse:
the image warped so that the ellipse is centred, its major axis horizontal and ``fill`` of the
frame's width (k x k block means first, k = floor(1 / scale), against aliasing; as
``usmr_tf.export.raw_pipeline.tf_align``), -1 outside the image; :meth:`~HeadLocatorCanonicalConverter.to_image` maps an ellipse fitted in
that frame back to image pixels.

Everything is TF ops: the converters run eagerly in the CLI and inside the exported graph.
"""

import math

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
        kwargs.setdefault("dtype", "float32")  # geometry in float32 under a mixed policy too
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


def affine_warp(image, matrix, offset, out_shape, fill):
    """``out (row, col) -> in = matrix @ out + offset``, bilinear, ``image`` [h, w] (TF ops)."""
    transform = tf.stack([matrix[1, 1], matrix[1, 0], offset[1],
                          matrix[0, 1], matrix[0, 0], offset[0], 0.0, 0.0])[None]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None, ..., None], transforms=transform, output_shape=out_shape,
        fill_value=fill, interpolation="BILINEAR", fill_mode="CONSTANT")[0, ..., 0]


@keras.saving.register_keras_serializable(package="usmr_tf")
class HeadLocatorCanonicalConverter(keras.layers.Layer):
    """Grey image (0-255) + ellipse (cx, cy, a, b, angle) -> the refinement frame.

    ``call(image, ellipse)`` returns (``[H, W, 1]`` float32 in [-1, 1], geometry float32 ``[8]``
    = (m00, m01, m10, m11, off_row, off_col, scale, 0)): frame pixel (row, col) shows image
    pixel ``(y, x) = M @ (row, col) + off``; ``scale`` = frame pixels per image pixel.
    """

    def __init__(self, height=256, width=320, fill=0.72, **kwargs):
        kwargs.setdefault("dtype", "float32")  # geometry in float32 under a mixed policy too
        super().__init__(**kwargs)
        self.height, self.width, self.fill = int(height), int(width), float(fill)

    def transform(self, ellipse):
        """(matrix [2, 2], offset [2], scale) of the frame for ``ellipse``."""
        ellipse = tf.cast(ellipse, tf.float32)
        cx, cy, a, angle = ellipse[0], ellipse[1], ellipse[2], ellipse[4]
        scale = self.fill * self.width / (2.0 * tf.maximum(a, 1e-3))
        cos, sin = tf.cos(angle), tf.sin(angle)
        matrix = tf.stack([tf.stack([cos, sin]), tf.stack([-sin, cos])]) / scale
        centre = tf.constant([(self.height - 1) / 2.0, (self.width - 1) / 2.0])
        offset = tf.stack([cy, cx]) - tf.linalg.matvec(matrix, centre)
        return matrix, offset, scale

    def call(self, image, ellipse):
        image = tf.cast(tf.convert_to_tensor(image), tf.float32)
        if image.shape.rank == 3:
            image = image[..., 0]
        matrix, offset, scale = self.transform(ellipse)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        # Only the part of the image the frame can see, then k x k block means (k = 1 / scale).
        reach = tf.cast(tf.math.ceil(math.hypot(self.height, self.width) / 2.0 / scale), tf.int32) + 2
        centre = tf.stack([tf.cast(ellipse[1], tf.float32), tf.cast(ellipse[0], tf.float32)])
        lo = tf.clip_by_value(tf.cast(tf.floor(centre), tf.int32) - reach, 0, tf.stack([h, w]) - 1)
        hi = tf.clip_by_value(tf.cast(tf.math.ceil(centre), tf.int32) + reach + 1, lo + 1,
                              tf.stack([h, w]))
        crop = image[lo[0]:hi[0], lo[1]:hi[1]] / 127.5 - 1.0
        k = tf.clip_by_value(tf.cast(1.0 / scale, tf.int32), 1,
                             tf.maximum(tf.reduce_min(tf.shape(crop)), 1))
        ch, cw = (tf.shape(crop)[0] // k) * k, (tf.shape(crop)[1] // k) * k
        blocks = tf.image.resize(crop[:ch, :cw, None], tf.stack([ch // k, cw // k]),
                                 method="area")[..., 0]
        kf = tf.cast(k, tf.float32)
        m = matrix / kf
        o = (offset - tf.cast(lo, tf.float32) - (kf - 1.0) / 2.0) / kf
        frame = affine_warp(blocks, m, o, [self.height, self.width], -1.0)
        geometry = tf.concat([tf.reshape(matrix, [4]), offset, scale[None], [0.0]], axis=0)
        return tf.clip_by_value(frame, -1.0, 1.0)[..., None], geometry

    def valid_mask(self, geometry, height, width):
        """Bool ``[H, W]``: frame pixels that show the ``height x width`` image."""
        matrix, offset = tf.reshape(geometry[:4], [2, 2]), geometry[4:6]
        rows, cols = tf.meshgrid(tf.range(self.height, dtype=tf.float32),
                                 tf.range(self.width, dtype=tf.float32), indexing="ij")
        y = matrix[0, 0] * rows + matrix[0, 1] * cols + offset[0]
        x = matrix[1, 0] * rows + matrix[1, 1] * cols + offset[1]
        h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
        return (y >= -0.5) & (y <= h - 0.5) & (x >= -0.5) & (x <= w - 0.5)

    @staticmethod
    def to_image(fit, geometry):
        """An ellipse (cx, cy, a, b, angle) fitted in the frame -> image pixels (TF ops)."""
        fit = tf.cast(fit, tf.float32)
        matrix, offset, scale = tf.reshape(geometry[:4], [2, 2]), geometry[4:6], geometry[6]
        y, x = tf.unstack(tf.linalg.matvec(matrix, tf.stack([fit[1], fit[0]])) + offset)
        # The frame's +col axis is the first ellipse's major axis (a rotation, no mirror).
        angle = fit[4] + tf.atan2(matrix[0, 1], matrix[1, 1])
        angle = tf.math.floormod(angle + math.pi / 2, math.pi) - math.pi / 2
        return tf.stack([x, y, fit[2] / scale, fit[3] / scale, angle])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "fill": self.fill}
