import keras
import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.models.head_locator.head_locator import (
    HeadLocator, Location, dice_bce_loss, location_from_values, refusal_reason)
from usmr_tf.models.head_locator.head_locator_backbone import HeadLocatorBackbone


@pytest.mark.parametrize("tail_filters", [0, 3])  # bilinear up-sampling / full-resolution tail
def test_logits_at_input_size_and_saving_round_trip(tmp_path, tail_filters):
    model = HeadLocator(HeadLocatorBackbone(4, 2, 2, (32, 48, 1), tail_filters), height=32,
                        width=48)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 48, 1)).astype(np.float32)
    out = model(x)
    assert tuple(out.shape) == (2, 32, 48, 1)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again(x), out, atol=1e-5)


def test_loss_prefers_the_right_mask():
    mask = np.zeros((1, 16, 16, 1), np.float32)
    mask[:, 4:12, 4:12] = 1
    right = tf.constant((mask * 2 - 1) * 6)
    wrong = -right
    assert float(dice_bce_loss(mask, right)[0]) < 0.1 < float(dice_bce_loss(mask, wrong)[0])


def test_refusal_rules_in_order():
    assert refusal_reason(0.0, 100, 1.0).startswith("no fetal head found (no ellipse")
    assert "score 0.500" in refusal_reason(0.5, 100, 1.0)
    assert refusal_reason(0.99, 20, 1.0).startswith("head too small")
    assert refusal_reason(0.99, 100, 0.3).startswith("head mostly outside")
    assert refusal_reason(0.99, 100, 0.9) is None
    loc = location_from_values([10, 20, 100, 80, 0.1, 0.99, 1.0])
    assert isinstance(loc, Location) and loc.found
    t = np.linspace(0, 2 * np.pi, 100001)
    exact = np.trapezoid(np.sqrt((100 * np.sin(t)) ** 2 + (80 * np.cos(t)) ** 2), t)
    assert abs(loc.hc - exact) < 1e-3
    e = loc.to_hc18_ellipse()
    assert e.center == (20.0, 10.0) and e.a == 100.0
