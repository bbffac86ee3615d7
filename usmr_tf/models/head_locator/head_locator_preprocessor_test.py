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
