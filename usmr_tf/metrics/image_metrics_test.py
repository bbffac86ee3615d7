import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.errors import DataError
from usmr_tf.metrics import image_metrics, synthetic


@pytest.fixture(scope="module")
def pair():
    target = np.stack([synthetic.head_phantom(48, seed=s) for s in range(3)])[..., None]
    noise = np.random.default_rng(0).normal(0, 0.1, target.shape)
    return np.clip(target + noise, -1, 1).astype(np.float32), target


def test_identical_images_are_perfect(pair):
    _, target = pair
    assert image_metrics.mae(target, target) == 0.0
    assert image_metrics.psnr(target, target) == image_metrics.MAX_PSNR_DB
    assert image_metrics.ssim(target, target) == pytest.approx(1.0, abs=1e-9)


def test_matches_tensorflow_reference(pair):
    prediction, target = pair
    tf_psnr = tf.image.psnr(prediction, target, max_val=2.0).numpy()
    tf_ssim = tf.image.ssim(prediction, target, max_val=2.0).numpy()
    np.testing.assert_allclose(image_metrics.psnr_per_image(prediction, target), tf_psnr, rtol=1e-4)
    np.testing.assert_allclose(image_metrics.ssim_per_image(prediction, target), tf_ssim, atol=1e-4)
    assert image_metrics.mae(prediction, target) == pytest.approx(
        float(np.abs(prediction - target).mean()), rel=1e-6)


def test_worse_with_more_noise(pair):
    _, target = pair
    rng = np.random.default_rng(1)
    previous = None
    for sigma in (0.05, 0.1, 0.3):
        noisy = np.clip(target + rng.normal(0, sigma, target.shape), -1, 1)
        values = (image_metrics.mae(noisy, target), -image_metrics.psnr(noisy, target),
                  -image_metrics.ssim(noisy, target))
        if previous is not None:
            assert all(v > p for v, p in zip(values, previous))
        previous = values


def test_bad_input_raises(pair):
    prediction, target = pair
    with pytest.raises(DataError, match="shape mismatch"):
        image_metrics.mae(prediction[:2], target)
    bad = prediction.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        image_metrics.psnr(bad, target)
    with pytest.raises(DataError, match=r"\[-1, 1\]"):
        image_metrics.ssim(prediction * 3, target)
    with pytest.raises(DataError, match="rank"):
        image_metrics.mae(prediction[None], target[None])
