import pathlib

import numpy as np
import tensorflow as tf

from usmr_tf.data.hc18 import load_annotation, subject_id
from usmr_tf.models.head_locator.head_locator_image_converter import HeadLocatorImageConverter
from usmr_tf.models.head_locator.head_locator_preprocessor import (
    augment_pair, hc18_examples, hc18_files, negative_examples, split_examples)

SAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples/sample_data/us/hc18"


def test_split_keeps_every_exam_in_one_split():
    split = split_examples([SAMPLE], test_fraction=0.4, val_fraction=0.3)
    exams = {k: {subject_id(p) for p, _ in v} for k, v in split.items()}
    assert sum(len(v) for v in split.values()) == len(hc18_files(SAMPLE))
    assert all(exams[a].isdisjoint(exams[b]) for a, b in (("train", "test"), ("train", "val"),
                                                          ("val", "test")))
    assert split == split_examples([SAMPLE], test_fraction=0.4, val_fraction=0.3)


def test_masks_are_the_annotated_ellipse_in_the_letterboxed_frame():
    converter = HeadLocatorImageConverter(112, 160)
    pairs = hc18_files(SAMPLE)[:2]
    images, masks = hc18_examples(pairs, converter)
    assert images.shape == masks.shape == (2, 112, 160, 1)
    for (_, ann), mask in zip(pairs, masks):
        e = load_annotation(ann)
        scale = 160 / 800  # HC18 frames are 800 px wide
        area = np.pi * e.a * e.b * scale ** 2
        assert abs(mask.sum() - area) / area < 0.03
        rows, cols = np.nonzero(mask[..., 0] > 0.5)
        assert abs((cols.mean() + 0.5) / scale - 0.5 - e.center[1]) < 6


def test_augmentation_moves_image_and_mask_together():
    image = -np.ones((64, 96, 1), np.float32)
    image[20:40, 30:50] = 1.0
    mask = (image > 0).astype(np.float32)
    for seed in range(5):
        x, m = augment_pair(tf.constant(image), tf.constant(mask), tf.constant([seed, 7]))
        x, m = np.asarray(x)[..., 0], np.asarray(m)[..., 0]
        if m.sum() < 5:  # moved out of the frame
            continue
        inside, outside = x[m > 0.9].mean(), x[m < 0.1].mean()
        assert inside > outside + 0.5


def test_negatives_have_empty_masks():
    x, y = negative_examples(8, HeadLocatorImageConverter(64, 96), seed=3)
    assert x.shape == (8, 64, 96, 1) and y.sum() == 0
    assert len({float(np.round(v.std(), 3)) for v in x}) > 3  # varied inputs


def test_canonical_mask_lines_up_with_the_warped_frame():
    """The refiner's training mask is the ellipse where the warp puts it (block means, k > 1)."""
    import math

    from usmr_tf.data.hc18 import Ellipse
    from usmr_tf.models.head_locator.head_locator_image_converter import (
        HeadLocatorCanonicalConverter)
    from usmr_tf.models.head_locator.head_locator_preprocessor import render_canonical_mask

    canonical = HeadLocatorCanonicalConverter(64, 96, fill=0.7)
    truth = Ellipse(center=(250.0, 430.0), a=180.0, b=130.0, angle=0.6)  # k = 5 block means
    rows, cols = np.mgrid[0:540, 0:800].astype(np.float64)
    u = (cols - 430) * math.cos(0.6) + (rows - 250) * math.sin(0.6)
    v = -(cols - 430) * math.sin(0.6) + (rows - 250) * math.cos(0.6)
    image = np.where((u / 180) ** 2 + (v / 130) ** 2 <= 1, 255.0, 0.0).astype(np.float32)
    # The frame of a first pass that erred a little, as in training.
    frame, geometry = canonical(image, np.array([436.0, 244.0, 190.0, 134.0, 0.5], np.float32))
    bright = (np.asarray(frame)[..., 0] + 1.0) / 2.0  # the warped, block-averaged fill share
    mask = render_canonical_mask(canonical, np.asarray(geometry), truth)[..., 0]
    assert abs(bright.sum() - mask.sum()) / mask.sum() < 0.01
    r, c = np.mgrid[0:64, 0:96]
    for grid in (r, c):  # centroids agree to a small fraction of a frame pixel
        assert abs((grid * bright).sum() / bright.sum() - (grid * mask).sum() / mask.sum()) < 0.1


def test_refiner_frames_and_their_augmentation():
    from usmr_tf.models.head_locator.head_locator_image_converter import (
        HeadLocatorCanonicalConverter)
    from usmr_tf.models.head_locator.head_locator_preprocessor import (
        INSIDE, augment_frame, jitter_ellipse, refiner_examples)

    rng = np.random.default_rng(0)
    base = np.array([400.0, 270.0, 200.0, 150.0, 0.3])
    for _ in range(50):
        j = jitter_ellipse(base, rng)
        assert abs(j[0] - 400) <= 10 and abs(j[1] - 270) <= 10 and abs(j[2] / 200 - 1) <= 0.08
    canonical = HeadLocatorCanonicalConverter(64, 96, fill=0.7)
    pairs = hc18_files(SAMPLE)[:2]
    x, y = refiner_examples(pairs, canonical, jitters=3, seed=0)
    assert x.shape == y.shape == (6, 64, 96, 1) and x.dtype == np.float16
    frac = y.reshape(6, -1).mean(axis=1)  # the head fills about pi/4 * 0.7 * b/a of the frame
    assert np.all((frac > 0.15) & (frac < 0.5))
    image = np.full((64, 96, 1), INSIDE, np.float32)  # a black image ...
    image[:, :10] = -1.0  # ... whose left columns lie outside the frame's image
    mask = np.zeros_like(image)
    mask[20:40, 30:60] = 1.0
    seen, shaded = set(), False
    for seed in range(8):
        out, m = augment_frame(tf.constant(image), tf.constant(mask), tf.constant([seed, 3]))
        out, m = np.asarray(out)[..., 0], np.asarray(m)[..., 0]
        rows = slice(24, 44) if m[24:44, :].any(axis=1).all() and not m[20:24].any() \
            else slice(20, 40)  # up-down flipped or not
        flipped_lr = bool(m[rows, 36:66].all())  # the mask moves with the image ...
        assert m.sum() == 20 * 30 and (flipped_lr or m[rows, 30:60].all())
        outside = slice(86, 96) if flipped_lr else slice(0, 10)
        inside = slice(0, 86) if flipped_lr else slice(10, 96)
        assert np.all(out[:, outside] == -1.0)  # ... the outside stays -1 ...
        shaded |= bool(np.any(out[:, inside] > -0.99))  # ... black image pixels are shaded
        seen.add(flipped_lr)
    assert seen == {True, False} and shaded
