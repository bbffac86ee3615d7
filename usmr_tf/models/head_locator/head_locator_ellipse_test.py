import math

import numpy as np
import pytest

from usmr_tf.models.head_locator.head_locator_ellipse import fit_ellipse_to_probability

H, W = 112, 160


def soft_ellipse(cx, cy, a, b, angle, width=1.0, shape=(H, W)):
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    u = (cols - cx) * math.cos(angle) + (rows - cy) * math.sin(angle)
    v = -(cols - cx) * math.sin(angle) + (rows - cy) * math.cos(angle)
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return 1.0 / (1.0 + np.exp((r - 1.0) * b / width))


@pytest.mark.parametrize("angle", [0.0, 0.5, -1.2])
def test_recovers_a_rotated_ellipse_with_subpixel_accuracy(angle):
    fit = fit_ellipse_to_probability(soft_ellipse(80.3, 55.6, 40.2, 28.7, angle))
    assert fit is not None
    assert abs(fit["cx"] - 80.3) < 0.05 and abs(fit["cy"] - 55.6) < 0.05
    assert abs(fit["a"] - 40.2) < 0.1 and abs(fit["b"] - 28.7) < 0.1
    assert abs(math.remainder(fit["angle"] - angle, math.pi)) < 0.01
    assert fit["score"] > 0.9


def test_a_head_cut_by_the_frame_is_fitted_from_its_visible_part():
    valid = np.zeros((H, W), bool)
    valid[:, :95] = True  # the frame ends inside the head
    fit = fit_ellipse_to_probability(soft_ellipse(80.0, 55.0, 40.0, 28.0, 0.3) * valid, valid)
    assert abs(fit["cx"] - 80.0) < 0.2 and abs(fit["a"] - 40.0) < 0.3


def test_a_stray_blob_does_not_pull_the_ellipse():
    prob = soft_ellipse(90.0, 60.0, 35.0, 25.0, 0.2)
    prob[5:20, 5:30] = 1.0
    fit = fit_ellipse_to_probability(prob)
    assert abs(fit["cx"] - 90.0) < 0.3 and abs(fit["a"] - 35.0) < 0.5
    clean = fit_ellipse_to_probability(soft_ellipse(90.0, 60.0, 35.0, 25.0, 0.2))
    assert fit["score"] < clean["score"]  # the blob costs confidence


def test_no_ellipse_and_scattered_responses():
    assert fit_ellipse_to_probability(np.zeros((H, W))) is None
    noisy = fit_ellipse_to_probability(np.random.default_rng(0).uniform(0, 1, (H, W)))
    assert noisy is None or noisy["score"] < 0.7
