import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from usmr_tf.data import testing
from usmr_tf.data.intensity import foreground_mask, normalize_intensity
from usmr_tf.data.nifti import Volume, load_volume
from usmr_tf.data.volume import (SliceGeometry, drop_detached_parts, reorient_to_ras,
                                 slices_to_volume, volume_to_slices)


@pytest.fixture
def oblique():
    data = testing.head_volume((36, 44, 30))
    return Volume(data=data, affine=testing.oblique_affine(), path="oblique.nii.gz")


def test_oblique_affine_is_not_ras(oblique):
    assert nib.aff2axcodes(oblique.affine) != ("R", "A", "S")


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_round_trip_keeps_geometry_and_values(oblique, axis):
    slices, geometry = volume_to_slices(oblique, axis=axis, size=64, min_foreground=0.0)
    assert slices.dtype == np.float32 and slices.shape[1:] == (64, 64, 1)
    assert slices.min() >= -1.0 and slices.max() <= 1.0
    back = slices_to_volume(slices, geometry)
    assert back.shape == oblique.shape and back.dtype == np.float32
    np.testing.assert_array_equal(geometry.affine, oblique.affine)
    expected = normalize_intensity(oblique.data, foreground_mask(oblique.data),
                                   mask_background=False)
    inner = ndimage.binary_erosion(foreground_mask(oblique.data), iterations=2)
    error = np.abs(back - expected)[inner]
    # The ramp is asymmetric along every axis: a flipped or permuted axis gives errors ~0.5+.
    assert error.mean() < 0.03, error.mean()
    assert np.percentile(error, 99) < 0.15


def test_round_trip_through_json_metadata(oblique):
    slices, geometry = volume_to_slices(oblique, size=48)
    restored = SliceGeometry.from_dict(geometry.to_dict())
    np.testing.assert_array_equal(slices_to_volume(slices, restored),
                                  slices_to_volume(slices, geometry))


def test_slices_equal_those_of_the_canonical_volume(oblique):
    canonical = nib.as_closest_canonical(nib.Nifti1Image(oblique.data, oblique.affine))
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    ras = Volume(data=np.asarray(canonical.dataobj, np.float32), affine=canonical.affine)
    a, _ = volume_to_slices(oblique, size=32)
    b, _ = volume_to_slices(ras, size=32)
    np.testing.assert_array_equal(a, b)
    data, affine = reorient_to_ras(oblique.data, oblique.affine)
    np.testing.assert_allclose(affine, canonical.affine)
    np.testing.assert_array_equal(data, ras.data)


def test_axial_slices_have_rows_along_right(tmp_path):
    # LPS volume whose intensity grows towards world +x (Right): rows of axial slices grow.
    shape = (20, 24, 16)
    data = testing.head_volume(shape)
    ramp = np.linspace(1, 2, shape[0])[::-1][:, None, None]  # array i grows towards Left
    volume = Volume(data=(data > 0) * ramp * 100 + 0.0, affine=np.diag([-1.0, -1.0, 1.0, 1.0]))
    slices, _ = volume_to_slices(volume, axis=2, size=32, percentiles=(0, 100))
    middle = slices[len(slices) // 2, :, 16, 0]
    inside = middle > -1
    assert np.all(np.diff(middle[inside]) >= -1e-5) and middle[inside][-1] > middle[inside][0]


def test_anisotropic_volume_is_resampled_to_isotropic_slices():
    data = testing.head_volume((40, 40, 10))
    volume = Volume(data=data, affine=np.diag([1.0, 1.0, 4.0, 1.0]))
    # Sagittal slices: in-plane (A, S); S voxels are 4x larger, so aspect keeps the 1:1 head.
    slices, geometry = volume_to_slices(volume, axis=0, size=64, min_foreground=0.0)
    rows, cols = geometry.fit.resized
    n_a, n_s = geometry.fit.in_shape
    assert abs(rows / cols - (n_a * 1.0) / (n_s * 4.0)) < 0.05
    axial, geo = volume_to_slices(volume, axis=2, size=64, min_foreground=0.0)
    assert geo.n_resampled >= 3 * (geo.crop[2][1] - geo.crop[2][0])  # 4 mm -> 1 mm spacing
    assert abs(geo.spacing - 4.0 * (geo.crop[2][1] - geo.crop[2][0]) / geo.n_resampled) < 1e-6


def test_min_foreground_drops_small_slices(oblique):
    every, g_all = volume_to_slices(oblique, size=32, min_foreground=0.0)
    big, g_big = volume_to_slices(oblique, size=32, min_foreground=0.8)
    assert 0 < len(big) < len(every)
    assert set(g_big.slice_indices) < set(g_all.slice_indices)
    back = slices_to_volume(big, g_big)
    assert back.shape == oblique.shape


def test_mask_sets_background(oblique):
    mask = np.zeros(oblique.shape, bool)
    mask[10:26, 12:30, 8:22] = True
    slices, geometry = volume_to_slices(oblique, size=32, mask=mask)
    back = slices_to_volume(slices, geometry)
    assert np.all(back[~ndimage.binary_dilation(mask, iterations=2)] == -1.0)
    assert (back[ndimage.binary_erosion(mask, iterations=2)] > -1).mean() > 0.9


def test_slices_to_volume_rejects_wrong_count(oblique):
    slices, geometry = volume_to_slices(oblique, size=32)
    with pytest.raises(ValueError, match="expected"):
        slices_to_volume(slices[1:], geometry)


def test_real_spina_bifida_volume_with_mask(shared_data):
    folder = shared_data / "mr" / "spina_bifida_fidon2021" / "fetal_SB_atlas_GA23_notoperated"
    if not (folder / "srr.nii.gz").exists():
        pytest.skip(f"{folder} is absent")
    volume = load_volume(folder / "srr.nii.gz")
    assert volume.shape == (135, 189, 155)
    slices, geometry = volume_to_slices(volume, axis=2, size=128, mask=folder / "mask.nii.gz")
    assert 20 < len(slices) < 155
    assert slices.min() == -1.0 and slices.max() <= 1.0 and slices.mean() > -0.9
    back = slices_to_volume(slices, geometry)
    np.testing.assert_array_equal(geometry.affine, volume.affine)
    mask = load_volume(folder / "mask.nii.gz").data > 0.5
    assert (back[~mask] == -1).mean() > 0.99  # outside the brain mask stays background


# --- plane matching: band, fill, rotate -------------------------------------------------


def _tilted_brain(shape=(40, 40, 24), degrees=30.0, spacing=(1.0, 1.0, 1.0)):
    """RAS volume: an ellipsoid long along A (columns of axial slices) turned `degrees`
    clockwise on screen in the axial plane, an intensity ramp along S, and its mask."""
    grid = np.stack(np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s
                                  for n, s in zip(shape, spacing)], indexing="ij"))
    a = np.radians(degrees)
    # Content turned clockwise on screen (rows down): the long axis points down-right.
    u = grid[1] * np.cos(a) + grid[0] * np.sin(a)
    v = -grid[1] * np.sin(a) + grid[0] * np.cos(a)
    mask = (u / 16.0) ** 2 + (v / 9.0) ** 2 + (grid[2] / 10.0) ** 2 <= 1
    data = np.where(mask, 300 + 10 * grid[2] + 5 * grid[1], 0.0).astype(np.float32)
    affine = np.diag(list(spacing) + [1.0])
    return Volume(data=data, affine=affine, path="tilted.nii.gz"), mask


def _long_axis_angle(image):
    """Angle (degrees, [0, 90]) of the foreground's principal axis from the horizontal."""
    rows, cols = np.nonzero(image > -1)
    _, vectors = np.linalg.eigh(np.cov(np.stack([rows, cols]).astype(float)))
    v_row, v_col = vectors[:, -1]
    return float(np.degrees(np.arctan2(abs(v_row), abs(v_col))))


def _extent(image):
    """(rows, cols) spanned by the foreground of a 2D slice."""
    rows, cols = np.nonzero(image > -1)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def test_band_keeps_the_slices_at_those_relative_positions():
    volume, mask = _tilted_brain(degrees=0.0)
    every, g_all = volume_to_slices(volume, size=32, mask=mask, min_foreground=0.0)
    middle, g_mid = volume_to_slices(volume, size=32, mask=mask, min_foreground=0.0,
                                     band=(0.4, 0.6))
    occupied = [i for i, s in zip(g_all.slice_indices, every) if (s > -1).any()]
    first, last = occupied[0], occupied[-1]
    positions = [(i - first) / (last - first) for i in g_mid.slice_indices]
    assert 0 < len(middle) < len(every) / 3
    assert min(positions) >= 0.4 - 1e-6 and max(positions) <= 0.6 + 1e-6
    assert min(positions) < 0.45 and max(positions) > 0.55  # the whole band, not a part
    # Same slices as without a band (same crop and scale), just fewer of them.
    lookup = dict(zip(g_all.slice_indices, every))
    for i, s in zip(g_mid.slice_indices, middle):
        np.testing.assert_array_equal(s, lookup[i])
    # Low band = inferior: the S ramp makes inferior slices darker.
    low, _ = volume_to_slices(volume, size=32, mask=mask, min_foreground=0.0, band=(0.0, 0.3))
    high, _ = volume_to_slices(volume, size=32, mask=mask, min_foreground=0.0, band=(0.7, 1.0))
    assert low[low > -1].mean() < high[high > -1].mean()
    back = slices_to_volume(middle, g_mid)
    assert back.shape == volume.shape and (back > -1).any(axis=(0, 1)).sum() < 0.3 * 24


@pytest.mark.parametrize("fill", [0.5, 0.72, 0.9])
def test_fill_sets_the_size_of_the_foreground(fill):
    volume, mask = _tilted_brain(degrees=0.0, spacing=(0.8, 1.2, 1.0))  # anisotropic in-plane
    slices, geometry = volume_to_slices(volume, size=64, mask=mask, fill=fill)
    widest = max(max(_extent(s[..., 0])) for s in slices)
    # Linear interpolation blurs the mask edge by up to one (upsampled) voxel each side.
    assert abs(widest - fill * 64) <= 3, (widest, fill * 64)
    default, _ = volume_to_slices(volume, size=64, mask=mask)
    assert max(max(_extent(s[..., 0])) for s in default) > 0.85 * 64  # margin only
    # The physical aspect ratio is kept: the ellipsoid is 32 x 18 mm in the axial plane.
    rows, cols = _extent(slices[len(slices) // 2, ..., 0])
    assert abs(rows / cols - 18.0 / 32.0) < 0.08
    back = slices_to_volume(slices, geometry)
    assert back.shape == volume.shape
    assert (back[ndimage.binary_erosion(mask, iterations=2)] > -1).mean() > 0.95


def test_rotate_auto_turns_the_long_axis_horizontal():
    volume, mask = _tilted_brain(degrees=30.0)
    plain, _ = volume_to_slices(volume, size=48, mask=mask, band=(0.3, 0.7))
    turned, geometry = volume_to_slices(volume, size=48, mask=mask, band=(0.3, 0.7),
                                        rotate="auto")
    assert all(abs(_long_axis_angle(s[..., 0]) - 30.0) < 4 for s in plain)
    assert all(_long_axis_angle(s[..., 0]) < 3 for s in turned)
    assert abs(abs(geometry.rotation) - 30.0) < 2.0
    # The turned brain is long horizontally, so it fills the width of the frame.
    rows, cols = _extent(turned[len(turned) // 2, ..., 0])
    assert cols > 1.5 * rows


def test_rotate_degrees_is_counter_clockwise_on_screen():
    volume, mask = _tilted_brain(degrees=0.0)
    # Mark the +A (right-hand, high column) end of the brain brighter.
    data = volume.data.copy()
    data[:, 28:, :] *= 2.0
    volume = Volume(data=data, affine=volume.affine, path="marked.nii.gz")
    slices, _ = volume_to_slices(volume, size=48, mask=mask, band=(0.45, 0.55), rotate=90)
    image = slices[0, ..., 0]
    rows, cols = _extent(image)
    assert rows > 1.5 * cols  # long axis now vertical
    bright = np.argwhere(image > np.percentile(image[image > -1], 80))
    assert bright[:, 0].mean() < 24  # the +A end moved to the top: counter-clockwise


def test_rotated_slices_go_back_into_the_volume(oblique):
    for rotate in ("auto", 20.0):
        slices, geometry = volume_to_slices(oblique, size=64, min_foreground=0.0, rotate=rotate)
        restored = SliceGeometry.from_dict(geometry.to_dict())
        assert restored.to_dict() == geometry.to_dict()
        back = slices_to_volume(slices, restored)
        assert back.shape == oblique.shape
        expected = normalize_intensity(oblique.data, foreground_mask(oblique.data),
                                       mask_background=False)
        inner = ndimage.binary_erosion(foreground_mask(oblique.data), iterations=3)
        error = np.abs(back - expected)[inner]
        assert error.mean() < 0.04, (rotate, error.mean())


def test_old_geometry_dicts_load_without_rotation(oblique):
    _, geometry = volume_to_slices(oblique, size=32)
    d = geometry.to_dict()
    del d["rotation"], d["rotated_shape"]
    assert SliceGeometry.from_dict(d).rotation == 0.0


@pytest.mark.parametrize("kwargs, match", [
    ({"band": (0.6, 0.4)}, "band"), ({"band": (0.2,)}, "band"), ({"band": (-0.1, 0.5)}, "band"),
    ({"fill": 0.0}, "fill"), ({"fill": 1.5}, "fill"), ({"rotate": "sideways"}, "rotate"),
])
def test_plane_options_reject_bad_values(oblique, kwargs, match):
    with pytest.raises(ValueError, match=match):
        volume_to_slices(oblique, size=32, **kwargs)


def test_foreground_largest_drops_detached_remnants():
    """`foreground="largest"`: a bright blob outside the head neither widens the crop nor
    shows in the slices (-1 there), unlike plain Otsu."""
    data = testing.head_volume((36, 44, 30))
    data[1:4, 1:4, 10:20] = data.max()  # a remnant at a corner, detached from the head
    volume = Volume(data, np.eye(4))
    plain, g_plain = volume_to_slices(volume, 2, 32, min_foreground=0.0)
    kept, g_kept = volume_to_slices(volume, 2, 32, min_foreground=0.0, foreground="largest")
    assert g_plain.crop[0][0] <= 1 and g_kept.crop[0][0] >= 3  # crop follows the head only
    assert kept.min() == -1.0 and kept.max() <= 1.0
    # about the crop of the same head without the remnant
    _, g_clean = volume_to_slices(Volume(testing.head_volume((36, 44, 30)), np.eye(4)), 2, 32,
                                  min_foreground=0.0)
    assert np.abs(np.subtract(g_clean.crop, g_kept.crop)).max() <= 2
    assert len(plain) == len(kept)  # the remnant is not in the band of any slice
    with pytest.raises(ValueError, match="foreground"):
        volume_to_slices(volume, 2, 32, foreground="biggest")


def test_drop_detached_parts_removes_a_scrap_across_a_dim_gap_only():
    """A head (disc with a dim rim) and a bar above it, joined by pixels darker than -0.8
    (as the MIAL super-resolution volume's slices): the bar goes, every head pixel, its dim
    rim included, stays; a slice with the bar touching the head, or with no bar, is kept."""
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 36, xx - 32)
    head = np.where(r < 18, 0.2 * np.sin(xx / 3.0), np.where(r < 20, -0.9, -1.0))
    scrap = head.copy()
    scrap[8:13, 20:44] = 0.5                      # the bar
    scrap[13:17, 28:34] = -0.9                    # dim tissue joining it to the rim
    touching = head.copy()
    touching[14:19, 24:40] = 0.5                  # bright all the way to the head: one part
    slices = np.stack([head, scrap, touching]).astype(np.float32)[..., None]
    cleaned, removed = drop_detached_parts(slices)
    assert cleaned.shape == slices.shape and cleaned.dtype == np.float32
    np.testing.assert_array_equal(cleaned[0], slices[0])
    np.testing.assert_array_equal(cleaned[2], slices[2])
    assert (cleaned[1, 8:16, 20:44] == -1.0).all()            # the bar and what joins it,
    np.testing.assert_array_equal(cleaned[1, 16], slices[1, 16])  # but not within 3 px
    inside = r < 20
    np.testing.assert_array_equal(cleaned[1, ..., 0][inside], slices[1, ..., 0][inside])
    assert removed[0] == removed[2] == 0 and 0.05 < removed[1] < 0.2
    assert (slices[1, 8:13, 20:44] == 0.5).all()              # the input is not changed
    flat, _ = drop_detached_parts(slices[..., 0])             # [N, H, W] works too
    np.testing.assert_array_equal(flat, cleaned[..., 0])
    blank, none_removed = drop_detached_parts(np.full((2, 8, 8, 1), -1.0))
    assert (blank == -1).all() and (none_removed == 0).all()  # nothing there, nothing done
    for shape in [(64, 64), (1, 64, 64, 3)]:                  # one slice, colour: refused
        with pytest.raises(ValueError, match="must be"):
            drop_detached_parts(np.zeros(shape))


def test_tilt_cuts_oblique_planes():
    """Intensity = height (S) inside a ball: flat axial slices are constant, slices of the
    volume tilted about x cross heights, so their columns differ."""
    shape = (30, 30, 30)
    grid = np.stack(np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij"))
    mask = (grid ** 2).sum(0) <= 13 ** 2
    data = np.where(mask, 100 + 3 * grid[2], 0.0).astype(np.float32)
    volume = Volume(data=data, affine=np.eye(4), path="ball.nii.gz")

    def spread(tilt):
        slices, geometry = volume_to_slices(volume, size=32, mask=mask, band=(0.45, 0.55),
                                            tilt=tilt)
        middle = slices[len(slices) // 2, ..., 0]
        inside = ndimage.binary_erosion(middle > -1, iterations=3)  # away from edge blur
        cols = [np.median(middle[:, c][inside[:, c]]) for c in range(32)
                if inside[:, c].sum() > 3]  # columns run along y, which the tilt mixes with z
        return float(np.ptp(cols)), geometry

    flat, g0 = spread(0.0)
    oblique, g20 = spread(20.0)
    assert flat < 0.05 and oblique > 0.2
    assert g0.tilt == 0.0 and g20.tilt == 20.0
    assert SliceGeometry.from_dict(g20.to_dict()).tilt == 20.0
    with pytest.raises(ValueError, match="axis 1 or 2"):
        volume_to_slices(volume, axis=0, size=32, mask=mask, tilt=10.0)
