"""Training data of the head locator: HC18 images + filled skull ellipses, negatives, augmentation.

keras-hub's segmenter preprocessor: turns (raw image, annotation) into the locator's
(input, mask) pair in its letterboxed frame (``HeadLocatorImageConverter``), and augments
pairs in TF ops so that the locator finds heads "at any position, scale and rotation".

- **Examples** (`hc18_examples`): every ``*_HC.png`` with its ``*_Annotation.png`` under the
  given HC18 folders; the reference ellipse (`reference_ellipse`: the annotation's
  least-squares ellipse, scaled to HC18's published HC where the folder's CSV has it) is
  rendered filled (4x4 super-sampled: a soft edge) in the letterboxed frame. The scaling
  matters: the ellipse fitted to the drawn 1-pixel outlines is 0.88 mm longer in
  circumference than HC18's own HC on average (sd 0.28 mm, measured on the test exams).
- **Split by exam** (`split_examples`): each folder is split 80/20 by HC18 exam number with
  ``usmr_tf.data.splits.split_subjects(seed=0)``: for ``us/hc18`` that is exactly the synthesis
  data recipes' split, so the locator's test exams are the synthesis test exams; validation
  is 10 % of the training exams (seed 1). No exam is in two splits.
- **Negatives** (`negative_images`): inputs with no fetal head and an empty mask: MR slices of
  the open MR volumes given (not the CRL atlas, not the held-out MIAL fetus), noise, blank
  and gradient frames, and photograph-like clutter (rectangles, lines, smooth blobs).
- **Augmentation** (`augment_pair`): random rotation (any angle half the time, small
  otherwise), scale 0.55-1.45, shift up to a quarter of the frame, horizontal flip, gamma,
  contrast, brightness, noise; the mask moves with the image (heads cut by the frame stay in).
- **Refiner frames** (`refiner_examples`): for the refinement pass, each training image warped
  into the canonical frame (``HeadLocatorCanonicalConverter``) of its reference ellipse
  *jittered* as a first pass errs (`jitter_ellipse`: centre +-5 % of the major semi-axis, size
  +-8 %, axis ratio +-4 %, angle +-8 degrees, and half the time turned by 180 degrees, since an
  ellipse's angle is only known modulo pi), with the reference ellipse rendered in that frame
  (`render_canonical_mask`). Augmented by flips and shading only (`augment_frame`): the frame's
  geometry is what the first pass gives.
"""

import math
import pathlib

import numpy as np
import tensorflow as tf

from usmr_tf.data.hc18 import annotation_path, load_annotation, subject_id
from usmr_tf.data.images import load_image
from usmr_tf.data.splits import split_subjects
from usmr_tf.errors import DataError
from usmr_tf.models.head_locator.head_locator_image_converter import (
    HeadLocatorCanonicalConverter, HeadLocatorImageConverter)


def hc18_files(folder):
    """``(image, annotation)`` paths of an HC18 folder (its ``training_set/`` if present)."""
    folder = pathlib.Path(folder)
    if (folder / "training_set").is_dir():
        folder = folder / "training_set"
    files = sorted(p for p in folder.glob("*HC.png"))
    if not files:
        raise DataError("no HC18 images (*HC.png) found", folder)
    return [(p, annotation_path(p)) for p in files if annotation_path(p).is_file()]


def split_examples(folders, test_fraction=0.2, val_fraction=0.1, seed=0):
    """{"train", "val", "test"}: lists of ``(image, annotation)``, split by exam per folder."""
    out = {"train": [], "val": [], "test": []}
    for folder in folders:
        files = hc18_files(folder)
        subjects = [subject_id(p) for p, _ in files]
        trainval, test = split_subjects(subjects, test_fraction, seed)
        _, val = split_subjects(trainval, val_fraction, seed + 1)
        test, val = set(test), set(val)
        for pair, subject in zip(files, subjects):
            key = "test" if subject in test else "val" if subject in val else "train"
            out[key].append(pair)
    return out


def _coverage(height, width, to_image, ellipse, supersample):
    """Share of each of ``height x width`` frame pixels (``supersample`` x ``supersample``
    points at sub-pixel centres) inside the image-frame ``Ellipse``; ``to_image(rows, cols)``
    maps frame coordinates to image (x, y). Soft ``[H, W, 1]`` float32."""
    n = supersample
    offsets = (np.arange(n) + 0.5) / n - 0.5
    rows = np.arange(height)[:, None, None, None] + offsets[None, None, :, None]
    cols = np.arange(width)[None, :, None, None] + offsets[None, None, None, :]
    x, y = to_image(rows, cols)
    (cy, cx), cos, sin = ellipse.center, math.cos(ellipse.angle), math.sin(ellipse.angle)
    u = (x - cx) * cos + (y - cy) * sin
    v = -(x - cx) * sin + (y - cy) * cos
    inside = (u / ellipse.a) ** 2 + (v / ellipse.b) ** 2 <= 1.0
    return inside.mean(axis=(2, 3)).astype(np.float32)[..., None]


def render_mask(converter, geometry, ellipse, supersample=4):
    """Filled image-frame ``Ellipse`` rendered in the converter's frame, soft ``[H, W, 1]``."""
    scale, top, left = (float(g) for g in np.asarray(geometry)[:3])
    # Map pixel -> image pixel (HeadLocatorImageConverter.to_image).
    return _coverage(converter.height, converter.width,
                     lambda r, c: ((c - left + 0.5) / scale - 0.5, (r - top + 0.5) / scale - 0.5),
                     ellipse, supersample)


def hc18_table(image_path):
    """``{filename: (pixel size mm, HC mm)}`` of the HC18 CSV beside an image's folder."""
    import csv

    table = {}
    folder = pathlib.Path(image_path).parent
    for csv_path in list(folder.parent.glob("*pixel_size*.csv")) + list(folder.glob("*pixel_size*.csv")):
        with csv_path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                hc = row.get("head circumference (mm)")
                table[row["filename"]] = (float(row["pixel size(mm)"]), float(hc) if hc else None)
    return table


def reference_ellipse(image_path, annotation, table=None):
    """The annotation's ellipse, scaled (centre and angle kept) to HC18's published HC when
    the CSV beside the image has it: the reference the HC18 measures are taken against."""
    import dataclasses

    from usmr_tf.metrics.head_measures import ellipse_perimeter

    ellipse = load_annotation(annotation)
    table = hc18_table(image_path) if table is None else table
    pixel_size, hc = table.get(pathlib.Path(image_path).name, (None, None))
    if not hc:
        return ellipse
    k = hc / (ellipse_perimeter(ellipse.a, ellipse.b) * pixel_size)
    return dataclasses.replace(ellipse, a=ellipse.a * k, b=ellipse.b * k)


def hc18_examples(pairs, converter):
    """(images ``[N, H, W, 1]`` in [-1, 1], masks ``[N, H, W, 1]`` in [0, 1]) of HC18 pairs."""
    images, masks, tables = [], [], {}
    for image_path, ann in pairs:
        image, geometry = converter(load_image(image_path))
        images.append(np.asarray(image))
        folder = pathlib.Path(image_path).parent
        tables.setdefault(folder, hc18_table(image_path))
        ellipse = reference_ellipse(image_path, ann, tables[folder])
        masks.append(render_mask(converter, np.asarray(geometry), ellipse))
    return np.stack(images), np.stack(masks)


def _mr_slices(volume_paths, rng, per_volume):
    import nibabel as nib

    slices = []
    for path in volume_paths:
        data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)
        data = np.squeeze(data)
        if data.ndim != 3:
            continue
        for _ in range(per_volume):
            axis = int(rng.integers(3))
            n = data.shape[axis]
            index = int(rng.uniform(0.25, 0.75) * n)
            cut = np.take(data, index, axis=axis)
            lo, hi = np.percentile(cut, [1, 99.5])
            if hi <= lo:
                continue
            slices.append(np.clip((cut - lo) / (hi - lo), 0, 1) * rng.uniform(180, 255))
    return slices


def _photo_like(rng, h, w):
    """Clutter that is neither US nor a head: rectangles, lines, smooth blobs, gradients."""
    from scipy import ndimage

    image = np.full((h, w), rng.uniform(0, 255), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    image += (xx / w * rng.uniform(-80, 80) + yy / h * rng.uniform(-80, 80)).astype(np.float32)
    for _ in range(int(rng.integers(3, 12))):
        r0, c0 = rng.integers(0, h), rng.integers(0, w)
        r1, c1 = r0 + rng.integers(5, h // 2), c0 + rng.integers(5, w // 2)
        image[r0:r1, c0:c1] = rng.uniform(0, 255)
    for _ in range(int(rng.integers(0, 6))):
        r = rng.integers(0, h)
        image[r:r + rng.integers(1, 6), :] = rng.uniform(0, 255)
    blobs = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), rng.uniform(4, 30))
    image += (blobs / (blobs.std() + 1e-6) * rng.uniform(5, 40)).astype(np.float32)
    return np.clip(image, 0, 255)


def negative_images(n, rng, mr_volumes=(), shape=(540, 800)):
    """``n`` grey images (0-255, varied sizes) with no fetal head."""
    from scipy import ndimage

    mr = _mr_slices(mr_volumes, rng, per_volume=max(1, n // (4 * max(len(mr_volumes), 1)) + 1))
    images = []
    for i in range(n):
        h = int(rng.integers(shape[0] // 2, shape[0] * 3 // 2))
        w = int(rng.integers(shape[1] // 2, shape[1] * 3 // 2))
        kind = i % 4
        if kind == 0 and mr:
            cut = mr[int(rng.integers(len(mr)))]
            zoom = rng.uniform(0.5, 1.0) * min(h / cut.shape[0], w / cut.shape[1])
            cut = ndimage.zoom(cut, zoom, order=1)
            image = np.zeros((h, w), np.float32)
            r, c = int(rng.integers(0, h - cut.shape[0] + 1)), int(rng.integers(0, w - cut.shape[1] + 1))
            image[r:r + cut.shape[0], c:c + cut.shape[1]] = cut[:h - r, :w - c]
        elif kind == 1:
            sigma = rng.choice([0.0, 1.0, 3.0])
            noise = rng.gamma(rng.uniform(0.5, 3.0), 1.0, (h, w)) if i % 8 == 1 \
                else rng.uniform(0, 1, (h, w))
            noise = ndimage.gaussian_filter(noise, sigma) if sigma else noise
            image = (noise - noise.min()) / (np.ptp(noise) + 1e-9) * 255
        elif kind == 2:
            image = np.full((h, w), rng.uniform(0, 255)) + rng.normal(0, rng.uniform(0, 3), (h, w))
        else:
            image = _photo_like(rng, h, w)
        images.append(np.clip(image, 0, 255).astype(np.float32))
    return images


def negative_examples(n, converter, seed=0, mr_volumes=()):
    rng = np.random.default_rng(seed)
    images = [np.asarray(converter(img)[0]) for img in negative_images(n, rng, mr_volumes)]
    return np.stack(images), np.zeros((n, converter.height, converter.width, 1), np.float32)


def _affine(batch_shape, seed):
    """Random projective-transform rows (output -> input) for ImageProjectiveTransformV3."""
    h, w = float(batch_shape[0]), float(batch_shape[1])
    s = tf.random.stateless_uniform([6], seed=seed)
    any_angle = s[0] < 0.5
    angle = tf.where(any_angle, (s[1] * 2 - 1) * math.pi, (s[1] * 2 - 1) * math.radians(20))
    scale = tf.exp((s[2] * 2 - 1) * math.log(1.45))
    tx, ty = (s[3] * 2 - 1) * 0.25 * w, (s[4] * 2 - 1) * 0.25 * h
    flip = tf.where(s[5] < 0.5, -1.0, 1.0)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # input = R^-1 S^-1 (output - c - t) + c, with an optional horizontal flip of the output.
    a0, a1 = cos * flip, sin
    b0, b1 = -sin * flip, cos
    ox, oy = cx + tx, cy + ty
    c0 = cx - a0 * ox - a1 * oy
    c1 = cy - b0 * ox - b1 * oy
    return tf.stack([a0, a1, c0, b0, b1, c1, 0.0, 0.0])


INSIDE, OUTSIDE = -0.998, -0.999  # refiner frames: image pixels >= INSIDE, outside -1


def _shade(image, seeds):
    """Random gamma, contrast, brightness and noise of an image in [-1, 1]."""
    s = tf.random.stateless_uniform([4], seed=seeds[0])
    grey = (image + 1.0) / 2.0
    grey = grey ** tf.exp((s[0] * 2 - 1) * math.log(1.5))
    grey = (grey - 0.5) * (0.7 + 0.6 * s[1]) + 0.5 + (s[2] - 0.5) * 0.2
    noise = tf.random.stateless_normal(tf.shape(grey), seed=seeds[1]) * 0.03 * s[3]
    return tf.clip_by_value((grey + noise) * 2.0 - 1.0, -1.0, 1.0)


def augment_pair(image, mask, seed):
    """One (image ``[H, W, 1]`` in [-1, 1], mask ``[H, W, 1]``) pair, randomly moved and shaded."""
    shape = tf.shape(image)[:2]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    transform = _affine(image.shape[:2], seeds[0])[None]
    warp = lambda x, fill: tf.raw_ops.ImageProjectiveTransformV3(  # noqa: E731
        images=x[None], transforms=transform, output_shape=shape, fill_value=fill,
        interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    image = warp(image, -1.0)
    mask = warp(mask, 0.0)
    return _shade(image, seeds[1:]), mask


def augment_frame(image, mask, seed):
    """A refiner pair: left-right / up-down flips (image and mask together) and shading."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    image, mask = tf.cast(image, tf.float32), tf.cast(mask, tf.float32)
    flips = tf.random.stateless_uniform([2], seed=seeds[0]) < 0.5
    for flip, axis in ((flips[0], 1), (flips[1], 0)):
        image = tf.where(flip, tf.reverse(image, [axis]), image)
        mask = tf.where(flip, tf.reverse(mask, [axis]), mask)
    outside = image < OUTSIDE  # outside the image (refiner_examples lifts the image to INSIDE)
    return tf.where(outside, -1.0, _shade(image, seeds[1:])), mask


def _lift(frame, valid):
    """Frame pixels of the image at >= INSIDE (black included), the rest exactly -1, so that
    ``augment_frame`` shades every image pixel and only the area outside the image stays -1."""
    return np.where(valid, np.maximum(frame, INSIDE), -1.0)


def jitter_ellipse(ellipse, rng):
    """(cx, cy, a, b, angle) moved as a first pass errs (see the module docstring)."""
    cx, cy, a, b, angle = (float(v) for v in ellipse)
    size = rng.uniform(-0.08, 0.08)
    return np.array([cx + rng.uniform(-0.05, 0.05) * a, cy + rng.uniform(-0.05, 0.05) * a,
                     a * (1 + size), b * (1 + size + rng.uniform(-0.04, 0.04)),
                     angle + math.radians(rng.uniform(-8, 8))
                     + (math.pi if rng.random() < 0.5 else 0.0)])


def render_canonical_mask(canonical, geometry, ellipse, supersample=4):
    """Filled image-frame ``Ellipse`` rendered in a canonical frame (``geometry`` of
    ``HeadLocatorCanonicalConverter``), soft ``[H, W, 1]``."""
    g = np.asarray(geometry, np.float64)
    m, off = g[:4].reshape(2, 2), g[4:6]
    # Frame (row, col) -> image (y, x) = M @ (row, col) + off.
    return _coverage(canonical.height, canonical.width,
                     lambda r, c: (m[1, 0] * r + m[1, 1] * c + off[1],
                                   m[0, 0] * r + m[0, 1] * c + off[0]),
                     ellipse, supersample)


def refiner_examples(pairs, canonical, jitters=8, seed=0):
    """(frames ``[N * jitters, H, W, 1]`` float16 in [-1, 1], masks float16 in [0, 1]):
    every pair in the canonical frames of ``jitters`` jittered copies of its reference ellipse."""
    rng = np.random.default_rng(seed)
    frames, masks, tables = [], [], {}
    for image_path, ann in pairs:
        image = load_image(image_path)
        folder = pathlib.Path(image_path).parent
        tables.setdefault(folder, hc18_table(image_path))
        ref = reference_ellipse(image_path, ann, tables[folder])
        params = (ref.center[1], ref.center[0], ref.a, ref.b, ref.angle)
        for _ in range(jitters):
            frame, geometry = canonical(image, tf.constant(jitter_ellipse(params, rng), tf.float32))
            valid = np.asarray(canonical.valid_mask(geometry, image.shape[0], image.shape[1]))
            frames.append(_lift(np.asarray(frame), valid[..., None]).astype(np.float16))
            masks.append(render_canonical_mask(canonical, np.asarray(geometry), ref)
                         .astype(np.float16))
    shape = (0, canonical.height, canonical.width, 1)
    return (np.stack(frames) if frames else np.zeros(shape, np.float16),
            np.stack(masks) if masks else np.zeros(shape, np.float16))


def training_dataset(images, masks, batch_size, seed=0, augment=True, augment_fn=augment_pair):
    """Endless shuffled, augmented (``augment_fn``) batches of (image, mask)."""
    ds = tf.data.Dataset.from_tensor_slices((images, masks)).repeat()
    ds = ds.shuffle(len(images), seed=seed)
    if augment:
        counter = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, counter)).map(
            lambda pair, s: augment_fn(pair[0], pair[1], tf.cast(s, tf.int32) % (2 ** 31 - 1)),
            num_parallel_calls=2)
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)


class HeadLocatorPreprocessor:
    """Raw image + HC18 annotation -> the locator's (input, mask) pair."""

    def __init__(self, converter=None):
        self.converter = converter or HeadLocatorImageConverter()

    def __call__(self, image_path, annotation=None):
        image, geometry = self.converter(load_image(image_path))
        if annotation is None:
            return np.asarray(image), None
        return np.asarray(image), render_mask(self.converter, np.asarray(geometry),
                                              load_annotation(annotation))
