import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.data.hc18 import MASK_MARGIN
from usmr_tf.layers import head_outline
from usmr_tf.metrics import outline
from usmr_tf.metrics.checks import foreground_mask

SIZE = 64


def _ellipse(a, b, cx=(SIZE - 1) / 2, cy=(SIZE - 1) / 2):
    rr, cc = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    return ((cc - cx) / a) ** 2 + ((rr - cy) / b) ** 2 <= 1


def _aligned_us(seed, a=0.4 * SIZE, b=0.32 * SIZE):
    """Speckle inside the ellipse x 1.03, -1 outside, with anechoic (-1) holes inside."""
    rng = np.random.default_rng(seed)
    grow = 1.0 + MASK_MARGIN
    image = np.where(_ellipse(a * grow, b * grow), rng.uniform(-0.6, 1.0, (SIZE, SIZE)), -1.0)
    image[_ellipse(3, 2, cx=30, cy=28)] = -1.0
    image[_ellipse(2, 4, cx=40, cy=36)] = -1.0
    return image.astype(np.float32), (a, b)


def test_the_mask_is_the_outline_checks_region_with_holes_filled():
    us = np.stack([_aligned_us(s)[0] for s in range(2)])
    mask = np.asarray(head_outline.intracranial_mask(us[..., None]))[..., 0]
    assert set(np.unique(mask)) == {0.0, 1.0}
    for u, m in zip(us, mask):
        want = outline.shrink(outline.us_head(u), outline.DEFAULT_SCALE)
        assert outline.dice(m > 0.5, want) > 0.99
        assert m[28, 30] == 1.0 and m[36, 40] == 1.0  # the anechoic holes are inside
        rows, cols = np.nonzero(m)  # centred like the aligned head: no half-pixel shift
        assert abs(rows.mean() - (SIZE - 1) / 2) < 0.1 and abs(cols.mean() - (SIZE - 1) / 2) < 0.1


def test_loss_is_zero_for_a_head_filling_the_region_and_grows_with_spill_or_cut():
    us, (a, b) = _aligned_us(0)
    mask = np.asarray(head_outline.intracranial_mask(us[None, ..., None]))[0, ..., 0]
    kept = np.where(mask > 0.5, 0.2, -1.0)
    grown = np.where(_ellipse(a * 1.1, b * 1.1), 0.2, -1.0)
    cut = kept.copy()
    cut[:, : SIZE // 3] = -1.0
    batch = np.stack([kept, grown, cut])[..., None].astype(np.float32)
    losses = np.asarray(head_outline.outline_loss_per_example(batch, np.stack([us] * 3)[..., None]))
    assert losses.shape == (3,) and losses[0] == pytest.approx(0.0, abs=1e-7)
    assert losses[1] > 0.02 and losses[2] > 0.02
    # the outline check agrees on the ranking
    scores = outline.outline_scores(np.stack([us] * 3), batch)
    assert scores[0] > scores[1] and scores[0] > scores[2]
    assert foreground_mask(kept).sum() == mask.sum()


def test_gradient_pushes_spilled_mr_down_and_missing_mr_up():
    us, _ = _aligned_us(1)
    mask = np.asarray(head_outline.intracranial_mask(us[None, ..., None]))
    x = tf.Variable(np.where(mask > 0.5, -1.0, 0.5).astype(np.float32))  # everything wrong
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(head_outline.outline_loss_per_example(x, us[None, ..., None]))
    grad = tape.gradient(loss, x).numpy()
    assert np.all(grad[mask > 0.5] < 0) and np.all(grad[mask < 0.5] > 0)


def test_bad_scale_is_refused():
    us, _ = _aligned_us(2)
    with pytest.raises(ValueError, match="scale"):
        head_outline.intracranial_mask(us[None, ..., None], scale=1.5)
