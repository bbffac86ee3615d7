import math

import numpy as np
import pytest

from usmr_tf.metrics import head_measures as hm


def test_perimeter_of_a_circle_and_of_a_flat_ellipse():
    assert hm.ellipse_perimeter(10.0, 10.0) == pytest.approx(2 * math.pi * 10.0, rel=1e-12)
    # a degenerate ellipse (b = 0) is a segment travelled twice: 4a (Ramanujan's II: 0.04 %)
    assert hm.ellipse_perimeter(10.0, 0.0) == pytest.approx(40.0, rel=1e-3)


@pytest.mark.parametrize("angle", [0.0, 0.7, -2.0])
def test_outline_lies_on_the_ellipse_and_closes_on_request(angle):
    ellipse = (30.0, 20.0, 12.0, 5.0, angle)
    points = hm.outline(ellipse, 90)
    assert points.shape == (90, 2)
    dx, dy = points[:, 0] - 30.0, points[:, 1] - 20.0
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    np.testing.assert_allclose((u / 12.0) ** 2 + (v / 5.0) ** 2, 1.0, atol=1e-12)
    closed = hm.outline(ellipse, 90, closed=True)
    assert closed.shape == (91, 2)
    np.testing.assert_array_equal(closed[:90], points)
    np.testing.assert_array_equal(closed[-1], closed[0])


def test_dice_hausdorff_and_hc_difference():
    shape = (64, 64)
    small, large = (32.0, 32.0, 10.0, 10.0, 0.0), (32.0, 32.0, 12.0, 12.0, 0.0)
    assert hm.dice(shape, small, small) == 1.0
    assert hm.dice(shape, small, (5.0, 5.0, 3.0, 3.0, 0.0)) == 0.0
    assert hm.dice(shape, small, large) == pytest.approx(2 * 100 / (100 + 144), abs=0.02)
    assert hm.hausdorff(small, large) == pytest.approx(2.0, abs=1e-6)
    m = hm.hc18_measures(shape, large, small, pixel_size=0.5)
    assert m["df_mm"] == pytest.approx(2 * math.pi * 2.0 * 0.5)  # fitted - reference, mm
    assert m["adf_mm"] == pytest.approx(abs(m["df_mm"]))
    assert m["hd_mm"] == pytest.approx(1.0, abs=1e-6)
    assert hm.hc18_measures(shape, small, large, 0.5, reference_hc=10.0)["df_mm"] == \
        pytest.approx(2 * math.pi * 10.0 * 0.5 - 10.0)
