import gzip

import nibabel as nib
import numpy as np
import pytest

from usmr_tf.data import testing
from usmr_tf.data.nifti import load_mask, load_volume, save_volume
from usmr_tf.errors import DataError


@pytest.fixture
def good(tmp_path):
    data = testing.head_volume((12, 14, 10))
    return testing.write_nifti(tmp_path / "good.nii.gz", data, testing.oblique_affine()), data


def test_load_volume_reads_data_and_affine(good):
    path, data = good
    volume = load_volume(path)
    assert volume.data.dtype == np.float32 and volume.shape == (12, 14, 10)
    np.testing.assert_allclose(volume.data, data, rtol=1e-6)
    np.testing.assert_allclose(volume.affine, testing.oblique_affine())
    np.testing.assert_allclose(sorted(volume.spacing), [1.0, 1.2, 1.5])


def test_singleton_4d_is_squeezed(tmp_path):
    data = testing.head_volume((8, 9, 7))[..., None]
    volume = load_volume(testing.write_nifti(tmp_path / "v.nii", data))
    assert volume.shape == (8, 9, 7)


def _bad_files(tmp_path, good_path):
    raw = good_path.read_bytes()
    vol = testing.head_volume((8, 9, 7))
    nan = vol.copy()
    nan[2, 3, 4] = np.nan
    inf = vol.copy()
    inf[1, 1, 1] = np.inf
    files = {
        "corrupt": tmp_path / "corrupt.nii.gz",
        "truncated": tmp_path / "truncated.nii.gz",
        "4d": testing.write_nifti(tmp_path / "4d.nii.gz", np.stack([vol, vol], -1)),
        "2d": testing.write_nifti(tmp_path / "2d.nii.gz", vol[:, :, 0]),
        "nan": testing.write_nifti(tmp_path / "nan.nii.gz", nan),
        "inf": testing.write_nifti(tmp_path / "inf.nii.gz", inf),
        "constant": testing.write_nifti(tmp_path / "constant.nii.gz", np.full((6, 6, 6), 7.0)),
    }
    files["corrupt"].write_bytes(gzip.compress(b"this is not a nifti header" * 20))
    files["truncated"].write_bytes(raw[: len(raw) // 2])
    return files


BAD_MESSAGES = {"corrupt": "cannot read", "truncated": "cannot read", "4d": "3D",
                "2d": "3D", "nan": "NaN or Inf", "inf": "NaN or Inf", "constant": "constant"}


def test_every_bad_volume_raises_data_error_naming_the_file(tmp_path, good):
    for kind, path in _bad_files(tmp_path, good[0]).items():
        with pytest.raises(DataError) as info:
            load_volume(path)
        assert str(path) in str(info.value), kind
        assert BAD_MESSAGES[kind] in str(info.value), (kind, str(info.value))


def test_missing_and_wrong_suffix(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_volume(tmp_path / "absent.nii.gz")
    (tmp_path / "v.txt").write_text("x")
    with pytest.raises(DataError, match="not a NIfTI"):
        load_volume(tmp_path / "v.txt")


def test_mask_checks_shape_and_emptiness(tmp_path, good):
    volume = load_volume(good[0])
    ok = testing.write_nifti(tmp_path / "m.nii.gz", (volume.data > 0).astype(np.uint8))
    assert load_mask(ok, like=volume).sum() == (volume.data > 0).sum()
    wrong = testing.write_nifti(tmp_path / "w.nii.gz", np.ones((3, 3, 3), np.uint8))
    with pytest.raises(DataError, match="does not match"):
        load_mask(wrong, like=volume)
    empty = testing.write_nifti(tmp_path / "e.nii.gz", np.zeros(volume.shape, np.uint8))
    with pytest.raises(DataError, match="empty"):
        load_mask(empty, like=volume)


def test_save_volume_round_trip(tmp_path, good):
    volume = load_volume(good[0])
    out = save_volume(volume.data * 2, volume.affine, tmp_path / "sub" / "o.nii.gz")
    image = nib.load(out)
    np.testing.assert_allclose(image.affine, volume.affine)
    np.testing.assert_allclose(image.get_fdata(), volume.data * 2, rtol=1e-6)
    assert sorted(p.name for p in out.parent.iterdir()) == ["o.nii.gz"]  # no temp left
