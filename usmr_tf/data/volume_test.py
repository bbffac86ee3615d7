import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from usmr_tf.data import testing
from usmr_tf.data.intensity import foreground_mask, normalize_intensity
from usmr_tf.data.nifti import Volume, load_volume
from usmr_tf.data.volume import SliceGeometry, reorient_to_ras, slices_to_volume, volume_to_slices


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
