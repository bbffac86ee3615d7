import numpy as np
import pytest

from usmr_tf.data import testing
from usmr_tf.data.images import image_to_slice, load_image
from usmr_tf.errors import DataError


def test_load_image_greyscale_and_rgb(tmp_path):
    grey, _ = testing.us_head_image()
    path = testing.write_png(tmp_path / "g.png", grey)
    np.testing.assert_array_equal(load_image(path), grey.astype(np.float32))
    rgb = testing.write_png(tmp_path / "c.png", np.stack([grey] * 3, -1))
    np.testing.assert_allclose(load_image(rgb), grey, atol=1)
    jpeg = tmp_path / "j.jpg"
    from PIL import Image

    Image.fromarray(grey).save(jpeg, quality=95)
    assert np.abs(load_image(jpeg) - grey).mean() < 4


@pytest.mark.parametrize("kind", ["not_an_image", "truncated", "missing", "constant"])
def test_bad_images_raise_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.png"
    if kind == "not_an_image":
        path.write_text("plain text, not a PNG")
    elif kind == "truncated":
        good = testing.write_png(tmp_path / "good.png", testing.us_head_image()[0])
        path.write_bytes(good.read_bytes()[:200])
    elif kind == "constant":
        testing.write_png(path, np.full((20, 20), 9, np.uint8))
    with pytest.raises(DataError) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_image_to_slice_keeps_aspect_and_range():
    image = np.zeros((50, 100), np.float32)
    image[10:40, 20:80] = np.linspace(10, 200, 60)[None, :]
    out, transform = image_to_slice(image, 64)
    assert out.shape == (64, 64, 1) and out.dtype == np.float32
    assert out.min() == -1.0 and 0.9 < out.max() <= 1.0  # resizing smooths the 99th pct.
    assert transform["fit"]["resized"] == [32, 64]
    assert np.all(out[:16] == -1) and np.all(out[48:] == -1)  # padding above/below
