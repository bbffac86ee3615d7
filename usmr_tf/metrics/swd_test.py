import numpy as np
import pytest
from scipy import ndimage

from usmr_tf.errors import DataError
from usmr_tf.metrics import swd, synthetic


@pytest.fixture(scope="module")
def sets():
    a = np.stack([synthetic.head_phantom(64, seed=s) for s in range(12)])
    b = np.stack([synthetic.head_phantom(64, seed=100 + s) for s in range(12)])
    return a, b


def test_pyramid_reconstructs_the_image(sets):
    a, _ = sets
    levels = swd.laplacian_pyramid(a.astype(np.float64))
    assert [lv.shape[1] for lv in levels] == [64, 32, 16]
    image = levels[-1]
    for band in reversed(levels[:-1]):  # invert: upsample the low-pass the same way, add the band
        up = np.zeros_like(band)
        up[:, ::2, ::2] = image
        image = band + swd._blur(up) * 4.0
    np.testing.assert_allclose(image, a, atol=1e-6)


def test_same_distribution_is_near_zero_and_shifts_grow(sets):
    a, b = sets
    same = swd.swd(a, a)["mean"]
    other_sample = swd.swd(a, b)["mean"]
    blurs = [swd.swd(a, ndimage.gaussian_filter(b, (0, s, s)))["mean"] for s in (0.5, 1.0, 2.0)]
    rng = np.random.default_rng(0)
    noises = [swd.swd(a, np.clip(b + rng.normal(0, n, b.shape), -1, 1))["mean"]
              for n in (0.05, 0.1, 0.2)]
    assert same < 1.5 * other_sample  # sampling noise floor only
    assert other_sample < blurs[0] < blurs[1] < blurs[2]
    assert other_sample < noises[0] < noises[1] < noises[2]
    assert blurs[2] > 5 * other_sample


def test_symmetric_and_deterministic(sets):
    a, b = sets
    blurred = ndimage.gaussian_filter(b, (0, 1, 1))
    assert swd.swd(a, blurred) == swd.swd(a, blurred)
    assert swd.swd(a, blurred)["mean"] == pytest.approx(swd.swd(blurred, a)["mean"], rel=0.15)


def test_rejects_mismatched_sizes(sets):
    a, _ = sets
    with pytest.raises(ValueError, match="sizes differ"):
        swd.swd(a, a[:, :32, :32])
    with pytest.raises(DataError, match="NaN"):
        swd.swd(a, np.full_like(a, np.nan))
