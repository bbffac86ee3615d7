import math

import numpy as np
import pytest
from scipy import ndimage

from usmr_tf.data import hc18, testing
from usmr_tf.errors import DataError


@pytest.mark.parametrize("angle", [-1.2, -0.3, 0.0, 0.7, 1.5])
def test_fit_ellipse_recovers_parameters(angle):
    t = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    a, b, cy, cx = 90.0, 55.0, 140.0, 210.0
    cols = cx + a * np.cos(t) * math.cos(angle) - b * np.sin(t) * math.sin(angle)
    rows = cy + a * np.cos(t) * math.sin(angle) + b * np.sin(t) * math.cos(angle)
    e = hc18.fit_ellipse(rows, cols)
    np.testing.assert_allclose(e.center, (cy, cx), atol=1e-6)
    np.testing.assert_allclose((e.a, e.b), (a, b), atol=1e-6)
    assert abs(math.sin(e.angle - angle)) < 1e-6  # the axis direction, modulo pi


@pytest.mark.parametrize("filled", [True, False])
def test_load_annotation_outline_or_filled(tmp_path, filled):
    mask = testing.ellipse_mask((200, 300), (90, 160), 70, 45, 0.5)
    if not filled:
        mask = mask & ~ndimage.binary_erosion(mask)
    path = testing.write_png(tmp_path / "001_HC_Annotation.png", mask.astype(np.uint8) * 255)
    e = hc18.load_annotation(path)
    assert abs(e.center[0] - 90) < 1.5 and abs(e.center[1] - 160) < 1.5
    assert abs(e.a - 70) < 2 and abs(e.b - 45) < 2 and abs(math.sin(e.angle - 0.5)) < 0.03


def test_spatial_normalize_centres_and_levels_the_head():
    image, head = testing.us_head_image(center=(60, 85), a=40, b=28, angle=0.9)
    ellipse = hc18.Ellipse(center=(60, 85), a=40, b=28, angle=0.9)
    out, transform = hc18.spatial_normalize(image, ellipse, size=64, head_fraction=0.8,
                                            mask_margin=0.0)
    assert out.shape == (64, 64, 1) and out.dtype == np.float32
    assert out.min() == -1.0 and out.max() == 1.0
    inside = out[..., 0] > -1
    rows, cols = np.nonzero(inside)
    assert abs(rows.mean() - 31.5) < 1.5 and abs(cols.mean() - 31.5) < 1.5
    width, height = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    assert abs(width - 0.8 * 64) <= 2 and abs(height - 0.8 * 64 * 28 / 40) <= 2
    # The transform maps output pixels back onto the input head.
    m, off = np.array(transform["matrix"]), np.array(transform["offset"])
    src = (m @ np.stack([rows, cols]) + off[:, None]).round().astype(int)
    assert head[src[0], src[1]].mean() > 0.97


def test_subject_ids_group_images_of_one_exam():
    assert hc18.subject_id("010_HC.png") == hc18.subject_id("010_2HC.png") == "010"
    assert hc18.subject_id("/x/123_3HC_Annotation.png") == "123"
    with pytest.raises(DataError):
        hc18.subject_id("scan.png")


def test_missing_annotation_is_an_error(tmp_path):
    path = testing.write_png(tmp_path / "002_HC.png", testing.us_head_image()[0])
    with pytest.raises(DataError, match="annotation"):
        hc18.load_hc18(path, 32)
    out, transform = hc18.load_hc18(path, 32, align=False)
    assert out.shape == (32, 32, 1) and transform["kind"] == "square_fit"


def test_real_hc18_image_with_annotation(shared_data):
    folder = shared_data / "us" / "hc18" / "training_set"
    images = sorted(folder.glob("*_HC.png"))
    if not images:
        pytest.skip(f"no HC18 images in {folder}")
    path = images[0]
    ellipse = hc18.load_annotation(hc18.annotation_path(path))
    assert 10 < ellipse.b <= ellipse.a < 400
    out, transform = hc18.load_hc18(path, 128)
    assert out.shape == (128, 128, 1) and -1 <= out.min() and out.max() <= 1
    inside = out[..., 0] > -1
    cols = np.nonzero(inside.any(axis=0))[0]
    assert abs((cols[-1] - cols[0] + 1) - 0.8 * 128) < 8  # canonical head size
    assert transform["source_shape"][0] > 500


def test_downsampling_matches_a_full_resolution_reference():
    # 1/scale = 4: the block-mean path must agree with Gaussian + full-resolution warping.
    image, _ = testing.us_head_image(shape=(240, 320), center=(120, 170), a=80, b=56, angle=0.6)
    image = ndimage.gaussian_filter(image.astype(np.float32), 2.0)
    ellipse = hc18.Ellipse(center=(120, 170), a=80, b=56, angle=0.6)
    out, transform = hc18.spatial_normalize(image, ellipse, size=40, percentiles=(0, 100))
    matrix, offset = np.array(transform["matrix"]), np.array(transform["offset"])
    smooth = ndimage.gaussian_filter(image, 2.0)
    inside = out[..., 0] > -1

    def agreement(shift):
        reference = ndimage.affine_transform(smooth, matrix, offset=offset + shift,
                                             output_shape=(40, 40), order=1)
        return np.corrcoef(out[..., 0][inside], reference[inside])[0, 1]

    best = agreement(np.zeros(2))
    assert best > 0.95
    for shift in ([2, 0], [-2, 0], [0, 2], [0, -2]):  # 2 input pixels = half an output pixel
        assert agreement(np.array(shift, float)) < best


@pytest.mark.parametrize("thickness", [4, 8])
def test_skull_inner_edge_of_a_synthetic_ring(thickness):
    # Skull ring of `thickness` px inside a 40 x 28 px head ellipse, tilted.
    shape, centre, a, b, angle = (120, 160), (60, 85), 40, 28, 0.4
    head = testing.ellipse_mask(shape, centre, a, b, angle)
    ring = head & ~testing.ellipse_mask(shape, centre, a - thickness, b - thickness, angle)
    image = ndimage.gaussian_filter(40.0 * head + 150.0 * ring, 1.0)
    ellipse = hc18.Ellipse(center=centre, a=a, b=b, angle=angle)
    rho = np.arange(0.5, 1.15, 0.005)
    samples, phi = hc18.radial_profile(image, ellipse, rho)
    major = np.abs(np.cos(phi)) > math.cos(math.radians(15))
    edge = hc18.skull_inner_edge(np.nanmean(samples[:, major], axis=1), rho)
    assert abs(edge - (a - thickness) / a) < 0.02, edge
    minor = np.abs(np.sin(phi)) > math.cos(math.radians(15))
    edge = hc18.skull_inner_edge(np.nanmean(samples[:, minor], axis=1), rho)
    assert abs(edge - (b - thickness) / b) < 0.03, edge
    # Outside the image the samples are NaN, not zeros.
    far, _ = hc18.radial_profile(image, ellipse, [3.0])
    assert np.isnan(far).any()
