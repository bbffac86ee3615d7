"""Differentiable augmentation of discriminator inputs (DiffAugment, Zhao et al. 2020;
also Karras et al. 2020, ADA) for small image sets. NOT part of Jiao et al. 2019: an option
(`diff_augment=True`) of the synthesis models, off by default.

With ~60 real MR slices a discriminator memorises the training set and its gradient pulls
every synthesized image towards a few of them (mode collapse). DiffAugment applies the same
random, differentiable transforms to real AND synthesized images before *every* discriminator
call, in the discriminator's and in the generator's update, so the discriminator never sees
an un-augmented image and the generator's gradient passes through the transforms.

Policies (Zhao et al.'s "color,translation,cutout" for a grey image in [-1, 1]):
- `color`: brightness + U(-0.5, 0.5) * 0.5, contrast around the image mean x U(0.5, 1.5);
- `translation`: integer shift by up to 1/8 of the size per axis, background (-1) fills in
  (done with one-hot shift matrices: a matmul, differentiable, no gather);
- `cutout`: a square of half the image side at a random centre is set to 0.

All draws are stateless (`tf.random.stateless_uniform`) from an explicit `[2]` seed: the
models derive it from the generator optimizer's step, so a resumed run draws the same values.
"""

import tensorflow as tf

POLICIES = ("color", "translation", "cutout")


def check_policy(policy):
    names = tuple(p.strip() for p in policy.split(",")) if isinstance(policy, str) else tuple(policy)
    bad = [p for p in names if p not in POLICIES]
    if bad or not names:
        raise ValueError(f"diff_augment policy must be a subset of {POLICIES}, got {policy!r}")
    return names


def _shift_matrices(shift, size):
    """`[B]` integer shifts -> `[B, size, size]` one-hot matrices M with (M x)[i] = x[i - s]."""
    rows = tf.range(size)[None, :, None]
    cols = tf.range(size)[None, None, :]
    return tf.cast(tf.equal(rows - shift[:, None, None], cols), tf.float32)


def diff_augment(images, seed, policy=POLICIES, background=-1.0):
    """Augments a batch `[B, H, W, 1]` (float, [-1, 1]); differentiable w.r.t. `images`.

    `seed`: int `[2]` tensor. Real and fake batches should get different seeds.
    """
    names = check_policy(policy)
    dtype = images.dtype
    x = tf.cast(images, tf.float32)
    shape = tf.shape(x)
    b, h, w = shape[0], shape[1], shape[2]
    seed = tf.cast(seed, tf.int32)
    draws = tf.random.stateless_uniform([6, b], seed=seed)
    if "color" in names:
        brightness = (draws[0] - 0.5)[:, None, None, None]
        x = x + brightness
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * (draws[1] + 0.5)[:, None, None, None] + mean
    if "translation" in names:
        # shift in [-size/8, size/8] per axis; pad with background by shifting (x - bg) then adding bg
        max_h, max_w = h // 8, w // 8
        sy = tf.cast(tf.floor(draws[2] * tf.cast(2 * max_h + 1, tf.float32)), tf.int32) - max_h
        sx = tf.cast(tf.floor(draws[3] * tf.cast(2 * max_w + 1, tf.float32)), tf.int32) - max_w
        my, mx = _shift_matrices(sy, h), _shift_matrices(sx, w)
        z = x[..., 0] - background
        z = tf.matmul(my, z)  # rows: [B, H, H] @ [B, H, W]
        z = tf.matmul(z, mx, transpose_b=True)  # cols: [B, H, W] @ [B, W, W]^T
        x = (z + background)[..., None]
    if "cutout" in names:
        half_h, half_w = h // 2, w // 2
        cy = tf.cast(draws[4] * tf.cast(h, tf.float32), tf.int32)
        cx = tf.cast(draws[5] * tf.cast(w, tf.float32), tf.int32)
        ys = tf.range(h)[None, :, None]
        xs = tf.range(w)[None, None, :]
        inside = (
            (tf.abs(ys - cy[:, None, None]) * 2 < half_h)
            & (tf.abs(xs - cx[:, None, None]) * 2 < half_w)
        )
        x = x * (1.0 - tf.cast(inside, tf.float32))[..., None]
    return tf.cast(x, dtype)
