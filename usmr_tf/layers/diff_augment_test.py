import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.layers.diff_augment import check_policy, diff_augment


def _batch(n=4, size=16, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 1)), tf.float32)


def test_same_seed_same_result_other_seed_differs():
    x = _batch()
    a = diff_augment(x, tf.constant([3, 1]))
    np.testing.assert_array_equal(a, diff_augment(x, tf.constant([3, 1])))
    assert not np.allclose(a, diff_augment(x, tf.constant([4, 1])))
    assert a.shape == x.shape and a.dtype == x.dtype


def test_translation_is_an_integer_shift_with_background_fill():
    x = _batch(n=8, size=32)
    y = diff_augment(x, tf.constant([7, 2]), policy="translation").numpy()
    for xi, yi in zip(x.numpy()[..., 0], y[..., 0]):
        matches = [
            (dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
            if np.allclose(np.roll(np.roll(xi, dy, 0), dx, 1)[4:-4, 4:-4], yi[4:-4, 4:-4], atol=1e-6)
        ]
        assert len(matches) == 1  # exactly one shift within +-size/8 explains the output
        dy, dx = matches[0]
        if dy > 0:
            assert np.all(yi[:dy] == -1.0)  # the rows shifted in are background
        if dx < 0:
            assert np.all(yi[:, dx:] == -1.0)


def test_cutout_zeroes_a_square_of_half_the_side():
    x = tf.ones([6, 16, 16, 1])
    y = diff_augment(x, tf.constant([1, 1]), policy="cutout").numpy()[..., 0]
    for yi in y:
        zeros = yi == 0
        rows, cols = np.where(zeros)
        assert zeros.sum() > 0 and (rows.max() - rows.min() + 1) <= 8 and (cols.max() - cols.min() + 1) <= 8
        assert np.all(yi[~zeros] == 1.0)


def test_gradient_reaches_the_images():
    x = tf.Variable(_batch())
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(diff_augment(x, tf.constant([5, 5])) ** 2)
    grad = tape.gradient(y, x)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_policy_is_checked():
    assert check_policy("color, cutout") == ("color", "cutout")
    with pytest.raises(ValueError, match="subset"):
        check_policy("color,rotate")
