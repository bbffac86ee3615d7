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
    assert main(["synthesize", "--model", str(model_dir), str(src), str(out), "--quiet",
                 "--align", "none"]) == 0
    mr = Image.open(out)
    assert mr.format == "PNG" and mr.mode == "L" and mr.size == (90, 60)
    assert np.asarray(mr).std() > 0
    out_dir = tmp_path / "mr_dir"
    assert main(["synthesize", "--model", str(model_dir), str(tmp_path / "in"), str(out_dir),
                 "--quiet", "--align", "none"]) == 0
    assert _files(out_dir) == ["a.png", "b.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(out_dir / "a.png")), np.asarray(mr))
    assert Image.open(out_dir / "b.png").size == (50, 50)
    assert _files(tmp_path) == ["a_mr.png", "in", "mr_dir"]
    square = tmp_path / "square.png"
    assert main(["synthesize", "--model", str(model_dir), str(src), str(square), "--quiet",
                 "--align", "none", "--output-frame", "aligned"]) == 0
    assert Image.open(square).size == (32, 32)  # the model's own frame


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


# --align-hc18: HC18 images aligned with their ellipse annotation, MR mapped back.

HEAD = dict(center=(31, 50), a=22, b=15, angle=0.4)  # the synthetic head in a 60 x 90 image


def _hc18_pair(folder, stem, seed=0, annotate=True):
    image, head = us_head_image(shape=(60, 90), seed=seed, **HEAD)
    path = write_png(folder / f"{stem}.png", image)
    if annotate:
        write_png(folder / f"{stem}_Annotation.png", (head * 255).astype(np.uint8))
    return path, head


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def _transform(path):
    from usmr_tf.data.hc18 import load_hc18

    return load_hc18(path, 32, align=True)[1]


def test_align_hc18_maps_mr_back_into_the_input_frame(model_dir, tmp_path, capsys):
    from usmr_tf.data.hc18 import load_hc18
    from usmr_tf.export import synthesis

    src, head = _hc18_pair(tmp_path / "in", "010_HC")
    us, transform = load_hc18(src, 32, align=True)
    out, aligned_out, preview = tmp_path / "mr.png", tmp_path / "mr_aligned.png", tmp_path / "f.png"
    argv = ["synthesize", "--model", str(model_dir), str(src), "--align-hc18", "--quiet"]
    assert main(argv + [str(out), "--preview", str(preview)]) == 0
    assert "not for diagnosis" in capsys.readouterr().out
    mr = np.asarray(Image.open(out))
    assert mr.shape == head.shape  # the input's size, not 32 x 32
    assert (mr[~synthesis.head_mask(*np.mgrid[0:60, 0:90], transform)] == 0).all()
    assert (mr[~head] == 0).mean() > 0.97  # grey -1 outside the annotated head
    assert mr[head].std() > 0 and (mr[head] > 0).mean() > 0.9  # synthesized values inside
    assert _iou(mr > 0, head) > 0.8  # the head is where it is in the input
    assert Image.open(preview).size[0] > 300
    # --output-frame aligned: exactly the model on load_hc18's slice, masked to the head.
    assert main(argv + [str(aligned_out), "--output-frame", "aligned"]) == 0
    expected = synthesis.mask_aligned_mr(SavedModelRunner(model_dir)(us[None])[0], transform)
    aligned = np.asarray(Image.open(aligned_out))
    assert aligned.shape == (32, 32)
    np.testing.assert_array_equal(aligned, synthesis.to_uint8(expected[..., 0]))
    # ... and the original-frame output is that MR put back through the inverse affine.
    np.testing.assert_array_equal(mr, synthesis.to_uint8(synthesis.unalign_mr(expected, transform)))
    assert _files(tmp_path) == ["f.png", "in", "mr.png", "mr_aligned.png"]


def test_unalign_inverts_the_alignment(tmp_path):
    """A linear ramp warped into the aligned frame and back is the ramp again inside the head."""
    from scipy import ndimage

    from usmr_tf.export import synthesis

    src, head = _hc18_pair(tmp_path, "001_HC")
    transform = _transform(src)
    rows, cols = np.mgrid[0:60, 0:90]
    ramp = (0.02 * rows - 0.015 * cols).astype(np.float64)
    aligned = ndimage.affine_transform(ramp, np.asarray(transform["matrix"]),
                                       offset=transform["offset"], output_shape=(32, 32), order=1)
    back = synthesis.unalign_mr(aligned[..., None], transform)
    inner = ndimage.binary_erosion(head, iterations=2)
    np.testing.assert_allclose(back[inner], ramp[inner], atol=1e-3)
    assert (back[~synthesis.head_mask(rows, cols, transform)] == -1).all()


def test_align_hc18_folder_skips_annotations_and_needs_them(model_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    _hc18_pair(folder, "010_HC", seed=1)
    _hc18_pair(folder, "011_2HC", seed=2)
    out_dir = tmp_path / "mr_dir"
    argv = ["synthesize", "--model", str(model_dir), str(folder), str(out_dir), "--align-hc18",
            "--quiet"]
    assert main(argv) == 0
    assert _files(out_dir) == ["010_HC.png", "011_2HC.png"]  # no *_Annotation.png outputs
    assert Image.open(out_dir / "011_2HC.png").size == (90, 60)
    # A missing annotation: exit 2 naming the image and the expected file, nothing written.
    (folder / "011_2HC_Annotation.png").unlink()
    out2 = tmp_path / "mr_dir2"
    assert main(argv[:4] + [str(out2)] + argv[5:]) == 2
    err = capsys.readouterr().err
    assert "011_2HC.png" in err and "011_2HC_Annotation.png" in err and "missing" in err
    assert not out2.exists() and _files(tmp_path) == ["in", "mr_dir"]


def test_align_hc18_bad_uses_exit_2(model_dir, oblique_nifti, tmp_path, capsys):
    src, _ = _hc18_pair(tmp_path, "012_HC", annotate=False)
    out = tmp_path / "out" / "mr.png"
    assert main(["synthesize", "--model", str(model_dir), str(src), str(out), "--align-hc18",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "012_HC.png" in err and "012_HC_Annotation.png is missing" in err
    assert main(["synthesize", "--model", str(model_dir), str(src), str(out), "--csv",
                 str(tmp_path / "e.csv"), "--align", "none", "--quiet"]) == 2
    assert "--csv writes the head ellipses" in capsys.readouterr().err
    assert main(["synthesize", "--model", str(model_dir), str(oblique_nifti),
                 str(tmp_path / "mr.nii.gz"), "--align-hc18", "--quiet"]) == 2
    assert "not NIfTI" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "mr.nii.gz").exists()


def test_align_hc18_real_image_with_shipped_preset(shared_data, tmp_path, monkeypatch):
    from scipy import ndimage

    from usmr_tf.data.hc18 import annotation_path, load_annotation
    from usmr_tf.export import synthesis

    monkeypatch.delenv("USMR_PRESETS_DIR", raising=False)
    src = shared_data / "us" / "hc18" / "training_set" / "000_HC.png"  # a held-out test image
    out, preview = tmp_path / "mr.png", tmp_path / "fig.png"
    assert main(["synthesize", "--preset", "fetal_hc18_v2", str(src), str(out), "--align-hc18",
                 "--preview", str(preview), "--quiet"]) == 0
    us = np.asarray(Image.open(src).convert("L"))
    mr = np.asarray(Image.open(out))
    assert mr.shape == us.shape
    outline = np.asarray(Image.open(annotation_path(src)).convert("L")) > 0
    head = ndimage.binary_fill_holes(outline)  # HC18 annotations are ellipse outlines
    transform = _transform(src)
    rows, cols = np.mgrid[0:us.shape[0], 0:us.shape[1]]
    assert (mr[~synthesis.head_mask(rows, cols, transform)] == 0).all()
    # The annotation lies on the skull's outer edge; MR shows the intracranial space, which ends
    # at 0.903 / 0.913 of the ellipse's axes (the skull echo's inner edge, docs/data.md "Size").
    ellipse = load_annotation(annotation_path(src))
    dr, dc = rows - ellipse.center[0], cols - ellipse.center[1]
    sin, cos = np.sin(ellipse.angle), np.cos(ellipse.angle)
    u, v = dr * sin + dc * cos, dr * cos - dc * sin  # along the major / minor axis
    intracranial = (u / (0.903 * ellipse.a)) ** 2 + (v / (0.913 * ellipse.b)) ** 2 <= 1
    assert _iou(mr > 0, intracranial) > 0.8
    assert mr[head].std() > 10  # MR-like structure inside the head, not a flat fill
    assert not np.array_equal(mr, us)
    assert Image.open(preview).size[0] > 300
