"""`unpaired_dataset`: the `tf.data` input of every model's `fit`.

Each side (US, MR) is an independent stream: its own seeded shuffle of indices,
repeated forever, batched, then gathered from an in-memory tensor. Zipping two
independent infinite streams handles the US:MR imbalance (the paper has 60:1): the
smaller side simply cycles faster. Augmentation is stateless, seeded by the batch
number, so the whole pipeline is deterministic for a given `seed`.
"""

import os
import pathlib

import numpy as np
import tensorflow as tf

from usmr_tf.data import augment as augment_lib
from usmr_tf.data.cache import load_prepared
from usmr_tf.errors import DataError

_RANGE_TOLERANCE = 1e-3


def as_images(source, *, name="images", split="train", modality=None):
    """Float32 `[N, H, W, 1]` in [-1, 1] from an array or a prepared-dataset folder."""
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if modality is None and (path / name / "train.npy").exists():
            modality = name
        images, _ = load_prepared(path, split, modality=modality)
        where = str(path)
    else:
        images, where = source, None
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] != 1:
        raise DataError(f"{name}: expected images [N, H, W, 1], got shape {images.shape}", where)
    if len(images) == 0:
        raise DataError(f"{name}: no images", where)
    lo, hi = float(np.min(images)), float(np.max(images))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise DataError(f"{name}: NaN or Inf values", where)
    if lo < -1 - _RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
        raise DataError(f"{name}: values in [{lo:g}, {hi:g}], expected [-1, 1]", where)
    return np.clip(images, -1.0, 1.0)


def _options(value, name):
    """{} for True, a copy of a non-empty dict of options, None for False/None/{}."""
    if not value:
        return None
    if value is True:
        return {}
    if isinstance(value, dict):
        return dict(value)
    raise ValueError(f"{name} must be true, false or a mapping of options, got {value!r}")


def _side(images, batch_size, *, seed, aug_key, shuffle, repeat, drop_remainder, augment,
          jitter_channels=1, augment_mr=None):
    n = int(images.shape[0])
    table = tf.convert_to_tensor(images)
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda idx: tf.gather(table, idx), num_parallel_calls=tf.data.AUTOTUNE)
    options = _options(augment, "augment")
    if options is not None or augment_mr is not None:

        def apply(step, batch):
            step_seed = tf.stack([tf.constant(seed * 2 + aug_key, tf.int64), step])
            if options is not None:
                batch = augment_lib.augment_batch(batch, step_seed,
                                                  jitter_channels=jitter_channels, **options)
            if augment_mr is not None:  # its own stream of draws (fold-in of the step seed)
                batch = augment_lib.augment_mr(
                    batch, tf.random.experimental.stateless_fold_in(step_seed, 1), **augment_mr)
            return batch

        ds = ds.enumerate().map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return ds


def unpaired_dataset(us, mr, batch_size, *, seed=0, augment=False, paired_mr=None, shuffle=True,
                     repeat=True, drop_remainder=True, split="train", augment_mr=False):
    """Unpaired `(us_batch, mr_batch)` batches (plus `paired_batch` when `paired_mr` is given).

    Args:
        us, mr: float32 arrays `[N, H, W, 1]` (or `[N, H, W]`) in [-1, 1], or prepared
            dataset folders (`usmr prepare` output, its `us`/`mr` subfolders).
        batch_size: global batch size (split across replicas under a `tf.distribute`
            strategy by Keras).
        seed: seeds shuffling and augmentation; same seed -> same batches.
        augment: False, True (defaults), or a dict of `augment.augment_batch` options
            (`flip`, `max_rotation` in degrees, `intensity`). Each side is augmented
            independently; `paired_mr` gets the same geometric transform as `us` (no jitter).
        paired_mr: optional MR aligned with `us` (same length and shape), e.g. phantom
            ground truth; yielded as a third element, shuffled together with `us`.
        shuffle: shuffle each side (reshuffled every pass).
        repeat: repeat forever. With False one pass over `us` is made; the MR side
            always cycles (it is an unpaired reference, usually the smaller side).
        drop_remainder: keep the batch dimension static (needed by most strategies).
        split: which split to read from prepared-dataset folders.
        augment_mr: False, True (defaults) or a dict of `augment.augment_mr` options: an
            extra MR-only augmentation of the `mr` side (bias field, contrast/gamma, noise,
            zoom/stretch/shift), after `augment`; stateless like it (same seed -> same
            batches). The `us` and `paired_mr` sides are untouched.

    Returns:
        A `tf.data.Dataset` of float32 `[B, H, W, 1]` tuples in [-1, 1], prefetched.
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    us = as_images(us, name="us", split=split)
    mr = as_images(mr, name="mr", split=split)
    if us.shape[1:] != mr.shape[1:]:
        raise DataError(f"us images are {us.shape[1:3]} but mr images are {mr.shape[1:3]}")
    channels = us
    if paired_mr is not None:
        paired = as_images(paired_mr, name="paired_mr", split=split)
        if paired.shape != us.shape:
            raise DataError(f"paired_mr shape {paired.shape} must equal us shape {us.shape}")
        channels = np.concatenate([us, paired], axis=-1)
    if not repeat and drop_remainder and len(us) < batch_size:
        raise DataError(f"{len(us)} US images cannot fill one batch of {batch_size} "
                        "(use repeat=True or drop_remainder=False)")
    common = dict(batch_size=batch_size, shuffle=shuffle, drop_remainder=drop_remainder,
                  augment=augment)
    us_ds = _side(channels, seed=seed, aug_key=0, repeat=repeat, **common)
    mr_ds = _side(mr, seed=seed + 1, aug_key=1, repeat=True,
                  augment_mr=_options(augment_mr, "augment_mr"), **common)
    ds = tf.data.Dataset.zip((us_ds, mr_ds))
    if paired_mr is not None:
        ds = ds.map(lambda u, m: (u[..., :1], m, u[..., 1:]))
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
