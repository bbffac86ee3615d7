"""`usmr synthesize` on NIfTI volumes (oblique affine), PNGs and folders, and its bad inputs."""

import gzip

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from usmr_tf.cli.main import main
from usmr_tf.data import load_volume, slices_to_volume, volume_to_slices
from usmr_tf.data.testing import head_volume, oblique_affine, us_head_image, write_nifti, write_png
from usmr_tf.export.runtimes import SavedModelRunner


@pytest.fixture(scope="module")
def model_dir(exported):
    return exported.parent  # saved_models/tiny (latest version is used)


@pytest.fixture
def oblique_nifti(tmp_path):
    data = head_volume(shape=(30, 36, 24), seed=1)
    return write_nifti(tmp_path / "us.nii.gz", data, oblique_affine())


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_volume_keeps_affine_shape_and_grid(model_dir, oblique_nifti, tmp_path, capsys):
    out = tmp_path / "out" / "mr.nii.gz"
    preview = tmp_path / "fig.png"
    rc = main(["synthesize", "--model", str(model_dir), str(oblique_nifti), str(out),
               "--batch-size", "7", "--preview", str(preview), "--quiet"])
    assert rc == 0
    assert "not for diagnosis" in capsys.readouterr().out
    src, mr = nib.load(str(oblique_nifti)), nib.load(str(out))
    assert mr.shape == src.shape
    np.testing.assert_allclose(mr.affine, src.affine, atol=1e-5)
    assert nib.aff2axcodes(mr.affine) == nib.aff2axcodes(src.affine)
    np.testing.assert_allclose(mr.header.get_zooms(), src.header.get_zooms(), atol=1e-5)
    assert mr.get_data_dtype() == np.float32
    assert b"not for diagnosis" in mr.header["descrip"].tobytes()
    data = mr.get_fdata()
    assert np.isfinite(data).all() and data.min() >= -1 and data.max() <= 1
    # Exactly the model applied slice-wise along usmr.json's axis (1 here), in batches of 7,
    # and put back into the input's voxel grid.
    runner = SavedModelRunner(model_dir)
    assert runner.slice_axis == 1
    us, geometry = volume_to_slices(load_volume(oblique_nifti), axis=1, size=32,
                                    min_foreground=0.0)
    expected = slices_to_volume(runner(us), geometry)
    np.testing.assert_allclose(data, expected, atol=1e-5)
    assert (data > -1).mean() > 0.2  # the head got synthesized values
    assert Image.open(preview).size[0] > 300
    assert _files(tmp_path / "out") == ["mr.nii.gz"]  # no temp files left


def test_png_and_folder(model_dir, tmp_path):
    image, _ = us_head_image(shape=(60, 90), seed=2)
    src = write_png(tmp_path / "in" / "a.png", image)
    write_png(tmp_path / "in" / "b.jpg", us_head_image(shape=(50, 50), seed=3)[0])
    (tmp_path / "in" / "notes.txt").write_text("ignored")
    out = tmp_path / "a_mr.png"
    assert main(["synthesize", "--model", str(model_dir), str(src), str(out), "--quiet"]) == 0
    mr = Image.open(out)
    assert mr.format == "PNG" and mr.mode == "L" and mr.size == (90, 60)
    assert np.asarray(mr).std() > 0
    out_dir = tmp_path / "mr_dir"
    assert main(["synthesize", "--model", str(model_dir), str(tmp_path / "in"), str(out_dir),
                 "--quiet"]) == 0
    assert _files(out_dir) == ["a.png", "b.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(out_dir / "a.png")), np.asarray(mr))
    assert Image.open(out_dir / "b.png").size == (50, 50)
    assert _files(tmp_path) == ["a_mr.png", "in", "mr_dir"]


def test_existing_output_needs_overwrite(model_dir, oblique_nifti, tmp_path, capsys):
    out = tmp_path / "mr.nii.gz"
    out.write_bytes(b"keep me")
    argv = ["synthesize", "--model", str(model_dir), str(oblique_nifti), str(out), "--quiet"]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(argv + ["--overwrite"]) == 0
    assert nib.load(str(out)).shape == (30, 36, 24)


def _bad_inputs(tmp_path):
    good = head_volume(shape=(20, 20, 20))
    nan = good.copy()
    nan[3, 4, 5] = np.nan
    full = tmp_path / "full.nii.gz"
    write_nifti(full, good, oblique_affine())
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(gzip.compress(gzip.decompress(full.read_bytes())[:400]))
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage.png").write_bytes(b"not a png at all")
    return {
        "nan.nii.gz": (write_nifti(tmp_path / "nan.nii.gz", nan), "NaN"),
        "rank4.nii.gz": (write_nifti(tmp_path / "rank4.nii.gz", np.ones((8, 8, 8, 3))), "3D"),
        "rank2.nii.gz": (write_nifti(tmp_path / "rank2.nii.gz", np.ones((8, 8))), "3D"),
        "truncated.nii.gz": (truncated, "corrupt or truncated"),
        "garbage.png": (tmp_path / "garbage.png", "not an image"),
        "empty": (tmp_path / "empty", "no .nii"),
        "missing.nii.gz": (tmp_path / "missing.nii.gz", "no such file"),
    }


@pytest.mark.parametrize("name", ["nan.nii.gz", "rank4.nii.gz", "rank2.nii.gz",
                                  "truncated.nii.gz", "garbage.png", "empty", "missing.nii.gz"])
def test_bad_input_exits_2_without_output(model_dir, tmp_path, capsys, name):
    path, message = _bad_inputs(tmp_path)[name]
    out = tmp_path / "out" / ("mr_dir" if name == "empty" else
                              "mr.png" if name.endswith(".png") else "mr.nii.gz")
    rc = main(["synthesize", "--model", str(model_dir), str(path), str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and path.name in err
    assert not out.exists()
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == []


def test_wrong_output_kind_and_bad_model(model_dir, oblique_nifti, tmp_path, capsys):
    assert main(["synthesize", "--model", str(model_dir), str(oblique_nifti),
                 str(tmp_path / "mr.png"), "--quiet"]) == 2
    assert "must be a file ending with .nii" in capsys.readouterr().err
    assert main(["synthesize", "--model", str(tmp_path), str(oblique_nifti),
                 str(tmp_path / "mr.nii.gz"), "--quiet"]) == 2
    assert "no exported model" in capsys.readouterr().err
    assert not (tmp_path / "mr.nii.gz").exists()
