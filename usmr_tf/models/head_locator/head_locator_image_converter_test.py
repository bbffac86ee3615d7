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
