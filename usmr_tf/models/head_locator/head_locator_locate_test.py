"""tf_locate's geometry end to end with an oracle segmenter (a bright filled ellipse)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.models.head_locator.head_locator_image_converter import HeadLocatorImageConverter
from usmr_tf.models.head_locator.head_locator_locate import tf_locate


def oracle(x):
    """'Head probability' = the input's brightness: a bright ellipse is its own mask."""
    return tf.sigmoid((x - 0.0) * 20.0)


def draw(shape, cx, cy, a, b, angle):
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    u = (cols - cx) * math.cos(angle) + (rows - cy) * math.sin(angle)
    v = -(cols - cx) * math.sin(angle) + (rows - cy) * math.cos(angle)
    return np.where((u / a) ** 2 + (v / b) ** 2 <= 1, 255.0, 0.0).astype(np.float32)


@pytest.mark.parametrize("zoom", [False, True])
@pytest.mark.parametrize("shape,ellipse", [
    ((540, 800), (430.0, 250.0, 180.0, 130.0, 0.4)),
    ((300, 260), (120.0, 160.0, 60.0, 45.0, -1.0)),
])
def test_ellipse_in_image_pixels(shape, ellipse, zoom):
    converter = HeadLocatorImageConverter(112, 160)
    out = tf_locate(oracle, tf.constant(draw(shape, *ellipse)), converter, zoom=zoom).numpy()
    cx, cy, a, b, angle, score, visible = out
    tol = 1.0 if zoom else 2.5  # the zoom pass sees the head at a finer scale
    assert abs(cx - ellipse[0]) < tol and abs(cy - ellipse[1]) < tol
    assert abs(a - ellipse[2]) < tol and abs(b - ellipse[3]) < tol
    assert abs(math.remainder(angle - ellipse[4], math.pi)) < 0.02
    assert score > 0.9 and visible == 1.0


def test_partly_outside_and_empty():
    converter = HeadLocatorImageConverter(112, 160)
    out = tf_locate(oracle, tf.constant(draw((540, 800), 760.0, 270.0, 150.0, 110.0, 0.0)),
                    converter).numpy()
    assert abs(out[0] - 760.0) < 3 and abs(out[2] - 150.0) < 3
    assert 0.4 < out[6] < 0.8  # about 60 % of the outline lies inside the frame
    empty = tf_locate(oracle, tf.zeros([200, 300]), converter).numpy()
    assert empty[5] == 0.0 and empty[6] == 0.0


def test_refinement_pass_keeps_the_score_and_refines_the_ellipse():
    from usmr_tf.models.head_locator.head_locator_image_converter import (
        HeadLocatorCanonicalConverter)

    converter = HeadLocatorImageConverter(56, 80)  # a coarse first pass
    canonical = HeadLocatorCanonicalConverter(96, 128, fill=0.72)
    truth = (430.0, 250.0, 180.0, 130.0, 0.4)
    image = tf.constant(draw((540, 800), *truth))
    plain = tf_locate(oracle, image, converter, zoom=False).numpy()
    refined = tf_locate(oracle, image, converter, zoom=False, refine=oracle,
                        canonical=canonical).numpy()
    err = lambda out: np.abs(out[:4] - np.array(truth[:4])).max()  # noqa: E731
    assert err(refined) < 1.0 and err(refined) < err(plain)
    assert abs(math.remainder(refined[4] - truth[4], math.pi)) < 0.02
    assert refined[5] == plain[5]  # the score (and so the refusal) is the first passes'
    # A refiner that sees nothing leaves the first ellipse as it was.
    blind = tf_locate(oracle, image, converter, zoom=False, refine=lambda x: tf.zeros_like(x),
                      canonical=canonical).numpy()
    np.testing.assert_allclose(blind, plain, atol=1e-4)
