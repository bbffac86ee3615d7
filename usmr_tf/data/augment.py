"""Seeded, stateless batch augmentation for images in [-1, 1] (background -1): `augment_batch`
(both modalities) and `augment_mr` (MR only: bias field, intensity, noise, zoom/stretch).

All randomness comes from `tf.random.stateless_*` with an explicit seed, so a
`tf.data` pipeline that derives the seed from the batch number is deterministic.
Rotation uses the `ImageProjectiveTransformV3` op (what `keras.layers.RandomRotation`
uses on TensorFlow; no tensorflow-addons).
"""

import math

import tensorflow as tf

DEFAULT_MAX_ROTATION = 10.0  # degrees
DEFAULT_INTENSITY = 0.1


def _rotation_transforms(angles, height, width):
    """[B, 8] projective transforms rotating each image by `angles` about its centre."""
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    cos, sin = tf.cos(angles), tf.sin(angles)
    zeros = tf.zeros_like(angles)
    return tf.stack([cos, -sin, cx - cos * cx + sin * cy,
                     sin, cos, cy - sin * cx - cos * cy, zeros, zeros], axis=1)


def _geometry(images, u_flip_lr, u_flip_ud, u_angle, flip, max_rotation):
    """Flips/rotation driven by uniform [0, 1) draws of shape [B]."""
    if flip:
        images = tf.where((u_flip_lr < 0.5)[:, None, None, None],
                          tf.reverse(images, axis=[2]), images)
        images = tf.where((u_flip_ud < 0.5)[:, None, None, None],
                          tf.reverse(images, axis=[1]), images)
    if max_rotation:
        limit = math.radians(float(max_rotation))
        shape = tf.shape(images)
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=_rotation_transforms((2.0 * u_angle - 1.0) * limit, shape[1], shape[2]),
            output_shape=shape[1:3],
            fill_value=tf.constant(-1.0, tf.float32),
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )
    return images


def _jitter(images, u_contrast, u_gamma, strength):
    """Contrast/gamma on [0, 1] intensities driven by uniform draws of shape [B]."""
    contrast = (1.0 + strength * (2.0 * u_contrast - 1.0))[:, None, None, None]
    gamma = tf.exp(2.0 * strength * (2.0 * u_gamma - 1.0))[:, None, None, None]
    y = tf.clip_by_value((images + 1.0) * 0.5, 0.0, 1.0)
    y = tf.exp(gamma * tf.math.log(y))  # y ** gamma (exp-log is ~4x faster than pow on CPU)
    return tf.clip_by_value(contrast * y, 0.0, 1.0) * 2.0 - 1.0


def _draws(images, seed):
    """One stateless draw of five uniforms per image: [5, B]."""
    batch = tf.shape(images)[0]
    return tf.unstack(tf.random.stateless_uniform([5, batch], seed), num=5)


def random_geometry(images, seed, *, flip=True, max_rotation=DEFAULT_MAX_ROTATION):
    """Random left-right / up-down flips and a small rotation per image of `[B, H, W, C]`.

    Every channel of an image gets the same transform (stack paired images along the
    channel axis to augment them identically). Uncovered pixels are filled with -1.
    """
    images = tf.convert_to_tensor(images, tf.float32)
    lr, ud, angle, _, _ = _draws(images, seed)
    return _geometry(images, lr, ud, angle, flip, max_rotation)


def intensity_jitter(images, seed, *, strength=DEFAULT_INTENSITY):
    """Random contrast and gamma per image, keeping -1 (background) fixed and range [-1, 1].

    On y = (x + 1) / 2 in [0, 1]: y' = clip(c * y ** g, 0, 1) with
    c ~ U(1 - strength, 1 + strength) and log g ~ U(-2 strength, 2 strength).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    if not strength:
        return images
    _, _, _, contrast, gamma = _draws(images, seed)
    return _jitter(images, contrast, gamma, strength)


def augment_batch(images, seed, *, flip=True, max_rotation=DEFAULT_MAX_ROTATION,
                  intensity=DEFAULT_INTENSITY, jitter_channels=1):
    """Geometry on all channels, intensity jitter on the first `jitter_channels` channels."""
    images = tf.convert_to_tensor(images, tf.float32)
    lr, ud, angle, contrast, gamma = _draws(images, seed)
    images = _geometry(images, lr, ud, angle, flip, max_rotation)
    if not intensity:
        return images
    head = _jitter(images[..., :jitter_channels], contrast, gamma, intensity)
    if jitter_channels >= images.shape[-1]:
        return head
    return tf.concat([head, images[..., jitter_channels:]], axis=-1)


# ----------------------------------------------------------------------------- MR only

DEFAULT_MR_AUGMENT = {
    "bias": 0.3,        # bias field: log-gain standard deviation (smooth, 4x4 control grid)
    "bias_grid": 4,
    "intensity": 0.15,  # contrast/gamma strength (as `intensity_jitter`)
    "noise": 0.02,      # Gaussian noise std on (x + 1) / 2, inside the head only
    "scale": 0.1,       # isotropic zoom in [1 - scale, 1 + scale]
    "aspect": 0.08,     # stretch: rows x (1 + a), cols / (1 + a), a ~ U(-aspect, aspect)
    "shift": 0.04,      # translation, fraction of the image size per axis
}


def _affine_transforms(zoom, stretch, shift_r, shift_c, height, width):
    """[B, 8] projective transforms (output -> input pixel) zooming each image by `zoom`,
    stretching rows by `stretch` and columns by 1 / `stretch`, about the centre, then
    shifting by (`shift_r`, `shift_c`) pixels."""
    cx = (tf.cast(width, tf.float32) - 1.0) / 2.0
    cy = (tf.cast(height, tf.float32) - 1.0) / 2.0
    sx = 1.0 / (zoom / stretch)  # input columns per output column
    sy = 1.0 / (zoom * stretch)
    zeros = tf.zeros_like(zoom)
    return tf.stack([sx, zeros, cx - sx * (cx + shift_c),
                     zeros, sy, cy - sy * (cy + shift_r), zeros, zeros], axis=1)


def _bias_field(seed, batch, height, width, grid, strength):
    """[B, H, W, 1] smooth multiplicative fields exp(N(0, strength) on a `grid` x `grid`
    control grid, bicubically upsampled), each normalised to geometric mean 1."""
    control = tf.random.stateless_normal([batch, grid, grid, 1], seed) * strength
    field = tf.image.resize(control, tf.stack([height, width]), method="bicubic")
    field -= tf.reduce_mean(field, axis=[1, 2, 3], keepdims=True)
    return tf.exp(field)


def augment_mr(images, seed, **options):
    """MR-only augmentation of `[B, H, W, 1]` slices in [-1, 1] (background -1).

    Widens what the few MR volumes give the MR discriminator: a smooth multiplicative
    bias field (as in MR scanners' coil sensitivity), contrast/gamma jitter and a little
    Gaussian noise on the head (pixels > -1) only, then a random zoom, anisotropic stretch
    and shift (bilinear, uncovered pixels -1). Stateless: the same `seed` (shape [2]
    int) gives the same output. Options (defaults `DEFAULT_MR_AUGMENT`; 0 turns one off):
    `bias`, `bias_grid`, `intensity`, `noise`, `scale`, `aspect`, `shift`. Output range
    [-1, 1]; the background stays -1.
    """
    unknown = set(options) - set(DEFAULT_MR_AUGMENT)
    if unknown:
        raise ValueError(f"unknown MR augmentation options {sorted(unknown)}; "
                         f"expected some of {sorted(DEFAULT_MR_AUGMENT)}")
    opts = dict(DEFAULT_MR_AUGMENT, **options)
    images = tf.convert_to_tensor(images, tf.float32)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    seeds = tf.unstack(tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int64), num=4), num=4)
    u = tf.unstack(tf.random.stateless_uniform([6, batch], seeds[0]), num=6)

    head = images > -1.0
    y = tf.clip_by_value((images + 1.0) * 0.5, 0.0, 1.0)
    if opts["bias"]:
        y = y * _bias_field(seeds[1], batch, height, width, int(opts["bias_grid"]),
                            float(opts["bias"]))
    if opts["intensity"]:
        strength = float(opts["intensity"])
        contrast = (1.0 + strength * (2.0 * u[0] - 1.0))[:, None, None, None]
        gamma = tf.exp(2.0 * strength * (2.0 * u[1] - 1.0))[:, None, None, None]
        y = contrast * tf.exp(gamma * tf.math.log(tf.clip_by_value(y, 1e-6, 1.0)))
    if opts["noise"]:
        y = y + float(opts["noise"]) * tf.random.stateless_normal(shape, seeds[2])
    y = tf.clip_by_value(y, 0.0, 1.0) * 2.0 - 1.0
    images = tf.where(head, y, -1.0)

    if opts["scale"] or opts["aspect"] or opts["shift"]:
        zoom = 1.0 + float(opts["scale"]) * (2.0 * u[2] - 1.0)
        stretch = 1.0 + float(opts["aspect"]) * (2.0 * u[3] - 1.0)
        shift = float(opts["shift"]) * (2.0 * tf.stack([u[4], u[5]]) - 1.0)
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=_affine_transforms(zoom, stretch,
                                          shift[0] * tf.cast(height, tf.float32),
                                          shift[1] * tf.cast(width, tf.float32),
                                          height, width),
            output_shape=shape[1:3],
            fill_value=tf.constant(-1.0, tf.float32),
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )
    return tf.clip_by_value(images, -1.0, 1.0)
