import numpy as np

from usmr_tf.models.head_locator.head_locator_image_converter import HeadLocatorImageConverter


def test_letterbox_keeps_the_aspect_and_maps_coordinates_back():
    converter = HeadLocatorImageConverter(64, 96)
    image = np.zeros((300, 600), np.float32)
    image[140:160, 390:410] = 255.0  # a bright square centred at (x 399.5, y 149.5)
    x, geometry = converter(image)
    x, geometry = np.asarray(x), np.asarray(geometry)
    assert x.shape == (64, 96, 1) and x.min() == -1.0 and x.max() > 0.5
    valid = np.asarray(converter.valid_mask(geometry))
    assert valid.sum() == 48 * 96  # 300x600 -> 48x96, centred, padding rows outside
    rows, cols = np.nonzero(x[..., 0] > 0)
    cx, cy, size = converter.to_image(geometry, cols.mean(), rows.mean(), length=1.0)
    assert abs(cx - 399.5) < 2.0 and abs(cy - 149.5) < 2.0
    assert abs(size - 6.25) < 1e-6  # one map pixel = 600 / 96 image pixels


def test_config_round_trip():
    converter = HeadLocatorImageConverter(32, 64, name="conv")
    again = HeadLocatorImageConverter.from_config(converter.get_config())
    assert (again.height, again.width, again.name) == (32, 64, "conv")


def _draw(shape, cx, cy, a, b, angle):
    import math

    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    u = (cols - cx) * math.cos(angle) + (rows - cy) * math.sin(angle)
    v = -(cols - cx) * math.sin(angle) + (rows - cy) * math.cos(angle)
    return np.where((u / a) ** 2 + (v / b) ** 2 <= 1, 255.0, 0.0).astype(np.float32)


def test_canonical_frame_centres_the_ellipse_horizontally_and_maps_back():
    import math

    from usmr_tf.models.head_locator.head_locator_ellipse import fit_ellipse_to_probability
    from usmr_tf.models.head_locator.head_locator_image_converter import (
        HeadLocatorCanonicalConverter)

    canonical = HeadLocatorCanonicalConverter(96, 128, fill=0.6)
    truth = (430.0, 250.0, 180.0, 130.0, 0.7)
    image = _draw((540, 800), *truth)
    frame, geometry = canonical(image, np.array(truth, np.float32))
    frame = np.asarray(frame)[..., 0]
    assert frame.shape == (96, 128)
    fit = fit_ellipse_to_probability(1 / (1 + np.exp(-20 * frame)))
    # In the frame: centred, major axis horizontal and 0.6 of the width.
    assert abs(fit["cx"] - 63.5) < 0.5 and abs(fit["cy"] - 47.5) < 0.5
    assert abs(2 * fit["a"] - 0.6 * 128) < 1.0 and abs(math.remainder(fit["angle"], math.pi)) < 0.02
    back = np.asarray(canonical.to_image(
        [fit["cx"], fit["cy"], fit["a"], fit["b"], fit["angle"]], geometry))
    assert np.all(np.abs(back[:4] - truth[:4]) < 2.0)
    assert abs(math.remainder(back[4] - truth[4], math.pi)) < 0.02
    valid = np.asarray(canonical.valid_mask(geometry, 540, 800))
    assert valid.mean() > 0.7 and np.all(frame[~valid] == -1.0)  # corners leave the image
    # A frame that reaches past the image's edge marks those pixels invalid and fills -1.
    edge, g2 = canonical(image, np.array([20.0, 250.0, 180.0, 130.0, 0.0], np.float32))
    v2 = np.asarray(canonical.valid_mask(g2, 540, 800))
    assert 0.2 < v2.mean() < 0.8 and np.all(np.asarray(edge)[..., 0][~v2] == -1.0)
    again = HeadLocatorCanonicalConverter.from_config(canonical.get_config())
    assert (again.height, again.width, again.fill) == (96, 128, 0.6)
