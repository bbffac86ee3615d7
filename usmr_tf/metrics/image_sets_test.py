import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from usmr_tf.errors import DataError
from usmr_tf.metrics import image_sets


def test_grey_mapping_round_trip():
    grey = np.arange(256, dtype=np.uint8)
    unit = image_sets.grey_to_unit(grey)
    assert unit[0] == -1.0 and unit[-1] == 1.0
    np.testing.assert_array_equal(image_sets.unit_to_grey(unit), grey)


def test_npy_png_and_folder(tmp_path):
    array = np.linspace(-1, 1, 2 * 16 * 16, dtype=np.float32).reshape(2, 16, 16, 1)
    np.save(tmp_path / "a.npy", array)
    loaded = image_sets.load_image_set(tmp_path / "a.npy", 16)
    np.testing.assert_array_equal(loaded, array)
    folder = tmp_path / "png"
    folder.mkdir()
    for i in range(3):  # wide images are fitted into the square, background padded with -1
        grey = np.full((10, 20), 255, np.uint8)
        grey[:, 0] = 0
        Image.fromarray(grey).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("ignored")
    stack = image_sets.load_image_set(folder, 20, limit=2)
    assert stack.shape == (2, 20, 20, 1)
    assert stack[0, 10, 10, 0] == 1.0 and stack[0, 0, 10, 0] == -1.0


def test_nifti_slices(tmp_path):
    volume = np.zeros((24, 24, 6), np.float32)
    volume[6:18, 6:18, 1:5] = np.random.default_rng(0).uniform(100, 200, (12, 12, 4))
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "v.nii.gz")
    stack = image_sets.load_image_set(tmp_path / "v.nii.gz", 32)
    assert stack.shape == (4, 32, 32, 1)  # the 2 empty slices are dropped
    assert stack.min() == -1.0 and 0.5 < stack.max() <= 1.0


@pytest.mark.parametrize("content, message", [
    (np.full((2, 8, 8), np.inf, np.float32), "NaN or Inf"),
    (np.full((2, 8, 8), 3.0, np.float32), "expected images in"),
    (np.zeros((2, 8, 8, 3), np.float32), "expected shape"),
    (np.zeros((0, 8, 8), np.float32), "empty array"),
])
def test_bad_arrays(tmp_path, content, message):
    np.save(tmp_path / "bad.npy", content)
    with pytest.raises(DataError, match=message) as info:
        image_sets.load_image_set(tmp_path / "bad.npy", 8)
    assert "bad.npy" in str(info.value)


def test_bad_files(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="broken.png: "):
        image_sets.load_image_set(tmp_path / "broken.png", 8)
    (tmp_path / "cut.npy").write_bytes(b"\x93NUMPY\x01\x00")
    with pytest.raises(DataError, match="cut.npy: unreadable"):
        image_sets.load_image_set(tmp_path / "cut.npy", 8)
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(DataError, match="unsupported input"):
        image_sets.load_image_set(tmp_path / "x.csv", 8)
    (tmp_path / "trunc.nii.gz").write_bytes(b"\x1f\x8b\x08\x00")
    with pytest.raises(DataError, match="trunc.nii.gz"):
        image_sets.load_image_set(tmp_path / "trunc.nii.gz", 8)


def test_prepared_dataset_folder(tmp_path):
    import json

    for modality, value in (("us", -0.5), ("mr", 0.5)):
        folder = tmp_path / "prepared" / modality
        folder.mkdir(parents=True)
        for split, n in (("train", 3), ("test", 2)):
            np.save(folder / f"{split}.npy", np.full((n, 16, 16, 1), value, np.float32))
            (folder / f"{split}.json").write_text(json.dumps([{}] * n))
    mr = image_sets.load_image_set(tmp_path / "prepared", 16, modality="mr")
    assert mr.shape == (2, 16, 16, 1) and np.all(mr == 0.5)
    us = image_sets.load_image_set(tmp_path / "prepared" / "us", 16, split="train")
    assert us.shape == (3, 16, 16, 1) and np.all(us == -0.5)
