"""Raw scans with the shipped locator: `usmr locate` and `usmr synthesize --align auto`,
and every no-head case refused (no output, the file named, non-zero exit)."""

import csv
import pathlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from usmr_tf.cli.main import main
from usmr_tf.data.hc18 import annotation_path, load_annotation
from usmr_tf.data.images import load_image

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples/sample_data/us/hc18/training_set"
PIXELS = ROOT / "examples/sample_data/us/hc18/training_set_pixel_size_and_HC.csv"
MR_VOLUME = ROOT / "examples/sample_data/mr/mialsrtk_sub-01/sub-01_rec-SR_id-1_T2w.nii.gz"
PRESET = "fetal_hc18_v2"


def _raw_copies(folder, n=3):
    """Sample HC18 images copied without their annotations (what a user has)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for path in sorted(SAMPLE.glob("*HC.png"))[:n]:
        dst = folder / path.name
        dst.write_bytes(path.read_bytes())
        out.append(dst)
    return out


def _save(path, grey):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).save(path)
    return path


def _mr_slice_png(path):
    import nibabel as nib

    data = np.asarray(nib.load(str(MR_VOLUME)).dataobj, np.float32)
    cut = data[:, :, data.shape[2] // 2]
    lo, hi = np.percentile(cut, [1, 99.5])
    grey = np.clip((cut - lo) / (hi - lo), 0, 1) * 255
    return _save(path, ndimage.zoom(grey, 540 / grey.shape[0], order=1))


def _photo_like(path):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:480, 0:640]
    grey = 90 + 80 * np.sin(xx / 37.0) * np.cos(yy / 23.0)  # a smooth pattern, stripes, boxes
    grey[100:220, 300:520] = 230
    grey[300:330, :] = 20
    grey += ndimage.gaussian_filter(rng.normal(0, 40, grey.shape), 3)
    return _save(path, grey)


def _tiny_head(path):
    image = load_image(sorted(SAMPLE.glob("*HC.png"))[0])
    small = ndimage.zoom(image, 0.08, order=1)  # a head of about 30 px in an 800x540 frame
    canvas = np.zeros((540, 800), np.float32)
    canvas[200:200 + small.shape[0], 300:300 + small.shape[1]] = small
    return _save(path, canvas)


def _mostly_outside(path):
    src = sorted(SAMPLE.glob("*HC.png"))[1]
    image, e = load_image(src), load_annotation(annotation_path(src))
    shift = int(round(e.center[1] + e.a / 3))  # the centre a third of a beyond the left edge
    out = np.zeros_like(image)
    out[:, :image.shape[1] - shift] = image[:, shift:]
    return _save(path, out)


NO_HEAD = {
    "mr_slice.png": _mr_slice_png,
    "noise.png": lambda p: _save(p, np.random.default_rng(0).uniform(0, 255, (540, 800))),
    "photo.png": _photo_like,
    "tiny_head.png": _tiny_head,
    "mostly_outside.png": _mostly_outside,
}


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_locate_writes_hc18_rows_in_mm(tmp_path, capsys):
    images = _raw_copies(tmp_path / "raw")
    out = tmp_path / "heads.csv"
    assert main(["locate", str(tmp_path / "raw"), "--csv", str(out), "--pixel-size-csv",
                 str(PIXELS), "--quiet"]) == 0
    assert "research measurement" in capsys.readouterr().out
    rows = _rows(out)
    assert list(rows[0])[:6] == ["filename", "center_x_mm", "center_y_mm", "semi_axes_a_mm",
                                 "semi_axes_b_mm", "angle_rad"]
    reference = {r["filename"]: r for r in csv.DictReader(open(PIXELS))}
    assert [r["filename"] for r in rows] == [p.name for p in images]
    for r in rows:
        ref_hc = float(reference[r["filename"]]["head circumference (mm)"])
        assert abs(float(r["hc_mm"]) - ref_hc) / ref_hc < 0.05
        assert float(r["score"]) >= 0.5 and "research" in r["note"]
    px = tmp_path / "px.csv"
    assert main(["locate", str(images[0]), "--csv", str(px), "--quiet"]) == 0
    assert "center_x_px" in _rows(px)[0] and "hc_px" in _rows(px)[0]


def test_locate_missing_pixel_size_is_an_error_before_writing(tmp_path, capsys):
    images = _raw_copies(tmp_path / "raw", 1)
    table = tmp_path / "sizes.csv"
    table.write_text("filename,pixel size(mm)\nother.png,0.1\n")
    out = tmp_path / "x.csv"
    assert main(["locate", str(images[0]), "--csv", str(out), "--pixel-size-csv", str(table)]) == 2
    assert images[0].name in capsys.readouterr().err and not out.exists()


def test_synthesize_aligns_a_raw_scan_automatically(tmp_path):
    (src,) = _raw_copies(tmp_path / "raw", 1)
    out, heads = tmp_path / "mr.png", tmp_path / "heads.csv"
    assert main(["synthesize", "--preset", PRESET, str(src), str(out), "--csv", str(heads),
                 "--quiet"]) == 0
    mr = np.asarray(Image.open(out))
    assert mr.shape == load_image(src).shape
    # Masked to the located head: the MR covers about the annotated ellipse, nothing else.
    e = load_annotation(annotation_path(SAMPLE / src.name))
    area = np.pi * e.a * e.b
    assert abs((mr > 0).sum() - area) / area < 0.15
    row = _rows(heads)[0]
    assert abs(float(row["center_x_px"]) - e.center[1]) < 0.03 * e.a
    # The same MR as with the annotation's ellipse, up to the small difference of the ellipses.
    annotated = tmp_path / "ann.png"
    assert main(["synthesize", "--preset", PRESET, "--align", "hc18", str(SAMPLE / src.name),
                 str(annotated), "--quiet"]) == 0
    both = (mr > 0) & (np.asarray(Image.open(annotated)) > 0)
    diff = np.abs(mr.astype(float) - np.asarray(Image.open(annotated), float))[both]
    assert np.median(diff) < 25
    aligned = tmp_path / "aligned.png"
    assert main(["synthesize", "--preset", PRESET, str(src), str(aligned), "--output-frame",
                 "aligned", "--quiet"]) == 0
    assert Image.open(aligned).size == (128, 128)


@pytest.mark.parametrize("name", sorted(NO_HEAD))
def test_no_head_no_mr(tmp_path, capsys, name):
    src = NO_HEAD[name](tmp_path / "in" / name)
    out = tmp_path / "out" / "mr.png"
    rc = main(["synthesize", "--preset", PRESET, str(src), str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"refused {src}" in err and "no output written" in err
    assert not out.exists() and not (tmp_path / "out").exists()
    located = tmp_path / "loc.csv"
    assert main(["locate", str(src), "--csv", str(located), "--quiet"]) == 1
    assert _rows(located)[0]["center_x_px"] == "" and _rows(located)[0]["note"]


def test_blank_image_is_refused_with_its_name(tmp_path, capsys):
    src = _save(tmp_path / "blank.png", np.full((540, 800), 128.0))
    out = tmp_path / "mr.png"
    assert main(["synthesize", "--preset", PRESET, str(src), str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "blank.png" in err and "constant image" in err and not out.exists()


def test_folder_writes_the_heads_and_lists_the_refused(tmp_path, capsys):
    images = _raw_copies(tmp_path / "in", 2)
    NO_HEAD["noise.png"](tmp_path / "in" / "noise.png")
    out = tmp_path / "mr_dir"
    assert main(["synthesize", "--preset", PRESET, str(tmp_path / "in"), str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in images)
    assert "noise.png" in captured.err and "1 refused" in captured.out
