"""In-graph pre- and post-processing for clients that send encoded images.

These TensorFlow ops live inside the exported SavedModel (signature ``predict_png``), so a
client only needs the PNG/JPEG bytes: decoding, greyscale conversion, resizing and
normalisation to the model's ``[-1, 1]`` range happen on the server, and the answer comes
back as a PNG of the same height and width as the input.

Geometry: the image is zero-padded (black = background) to a centred square, resized to
``image_size x image_size`` and, after synthesis, resized back to the square and cropped, so
the aspect ratio is kept and the output lines up pixel for pixel with the input.
"""

import tensorflow as tf


def _square_offsets(height, width):
    side = tf.maximum(height, width)
    return side, (side - height) // 2, (side - width) // 2


def decode_us_image(encoded, image_size):
    """Encoded PNG/JPEG/BMP/GIF bytes (scalar string) -> (``[S, S, 1]`` float32 in [-1, 1], [h, w])."""
    image = tf.io.decode_image(encoded, channels=1, dtype=tf.uint8, expand_animations=False)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side, top, left = _square_offsets(height, width)
    image = tf.image.pad_to_bounding_box(image, top, left, side, side)
    image = tf.image.resize(
        tf.cast(image, tf.float32), [image_size, image_size], method="bilinear", antialias=True
    )
    image = tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)
    return image, tf.stack([height, width])


def encode_mr_image(mr_image, height_width):
    """``[S, S, 1]`` float in [-1, 1] and the original [h, w] -> PNG bytes (8-bit grey, h x w)."""
    height, width = height_width[0], height_width[1]
    side, top, left = _square_offsets(height, width)
    image = tf.image.resize(mr_image, [side, side], method="bilinear", antialias=True)
    image = tf.image.crop_to_bounding_box(image, top, left, height, width)
    grey = tf.cast(tf.round(tf.clip_by_value((image + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)
    return tf.io.encode_png(grey)


def decode_us_batch(encoded_batch, image_size):
    """``[B]`` string -> (``[B, S, S, 1]`` float32, ``[B, 2]`` int32 original sizes)."""
    return tf.map_fn(
        lambda encoded: decode_us_image(encoded, image_size),
        encoded_batch,
        fn_output_signature=(
            tf.TensorSpec([image_size, image_size, 1], tf.float32),
            tf.TensorSpec([2], tf.int32),
        ),
    )


def encode_mr_batch(mr_batch, sizes):
    """``[B, S, S, 1]`` float in [-1, 1] and ``[B, 2]`` sizes -> ``[B]`` PNG strings."""
    return tf.map_fn(
        lambda args: encode_mr_image(args[0], args[1]),
        (mr_batch, sizes),
        fn_output_signature=tf.TensorSpec([], tf.string),
    )
