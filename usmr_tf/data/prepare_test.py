import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from usmr_tf.data import cache, testing
from usmr_tf.data.prepare import load_config, prepare_dataset
from usmr_tf.data.volume import SliceGeometry, slices_to_volume
from usmr_tf.errors import ConfigError, DataError

SIZE = 32


def _config(root):
    return {
        "data_root": str(root), "size": SIZE, "test_fraction": 0.25, "seed": 0,
        "mr": [{"name": "vols", "kind": "nifti", "root": "mr", "pattern": "*.nii.gz",
                "subject": r"(s\d+)", "axis": 2}],
        "us": [{"name": "hc", "kind": "hc18", "root": "us", "head_fraction": 0.8}],
    }


@pytest.fixture
def source(tmp_path):
    root = tmp_path / "data"
    affine = testing.oblique_affine()
    # s1 has two volumes: they must land in the same split.
    for i, name in enumerate(["s1_a", "s1_b", "s2", "s3", "s4"]):
        testing.write_nifti(root / "mr" / f"{name}.nii.gz",
                            testing.head_volume((20, 24, 16), seed=i), affine)
    for i, name in enumerate(["010_HC", "010_2HC", "012_HC", "014_HC", "016_HC"]):
        image, head = testing.us_head_image(angle=0.3 * i, seed=i)
        testing.write_png(root / "us" / f"{name}.png", image)
        testing.write_png(root / "us" / f"{name}_Annotation.png", head.astype(np.uint8) * 255)
    return root


def test_prepare_writes_split_slices_without_leakage(tmp_path, source):
    out, manifest, reused = prepare_dataset(_config(source), tmp_path / "ds")
    assert not reused and manifest["counts"]["us"] == {"train": 4, "test": 1}
    for modality in ("us", "mr"):
        subjects = {}
        for split in ("train", "test"):
            images, meta = cache.load_prepared(out, split, modality=modality)
            assert images.dtype == np.float32 and images.shape[1:] == (SIZE, SIZE, 1)
            assert images.min() >= -1 and images.max() <= 1 and len(images) == len(meta)
            subjects[split] = {m["subject"] for m in meta}
        assert subjects["train"] and subjects["test"]
        assert not subjects["train"] & subjects["test"]
    _, meta = cache.load_prepared(out, "train", modality="mr")
    assert {m["subject"] for m in meta if "s1_" in m["source"]} <= {"vols/s1"}


def test_cached_slices_go_back_into_their_volume(tmp_path, source):
    out, _, _ = prepare_dataset(_config(source), tmp_path / "ds")
    images, meta = cache.load_prepared(out, "train", modality="mr")
    first = meta[0]["source"]
    rows = [i for i, m in enumerate(meta) if m["source"] == first]
    assert [meta[i]["position"] for i in rows] == list(range(len(rows)))
    geometry = SliceGeometry.from_dict(meta[rows[0]]["geometry"])
    volume = slices_to_volume(images[rows], geometry)
    assert volume.shape == (20, 24, 16)
    np.testing.assert_allclose(geometry.affine, testing.oblique_affine())


def test_prepare_is_keyed_by_parameters_and_inputs(tmp_path, source):
    config = _config(source)
    out, first, _ = prepare_dataset(config, tmp_path / "ds")
    _, again, reused = prepare_dataset(config, out)
    assert reused and again["key"] == first["key"]
    _, changed, reused = prepare_dataset(dict(config, seed=1), out)
    assert not reused and changed["key"] != first["key"]
    stamp = source / "mr" / "s2.nii.gz"
    os.utime(stamp, ns=(stamp.stat().st_atime_ns, stamp.stat().st_mtime_ns + 10**9))
    _, touched, reused = prepare_dataset(dict(config, seed=1), out)
    assert not reused and touched["key"] != changed["key"]


def _make_bad(root, kind):
    """Adds one bad input to a good source tree; returns the path the error must name."""
    mr = root / "mr"
    vol = testing.head_volume((10, 12, 8))
    if kind == "corrupt":
        path = mr / "s9.nii.gz"
        path.write_bytes(gzip.compress(b"not a nifti" * 50))
    elif kind == "truncated":
        data = (mr / "s2.nii.gz").read_bytes()
        path = mr / "s9.nii.gz"
        path.write_bytes(data[: len(data) // 3])
    elif kind == "4d":
        path = testing.write_nifti(mr / "s9.nii.gz", np.stack([vol, vol], -1))
    elif kind == "2d":
        path = testing.write_nifti(mr / "s9.nii.gz", vol[:, :, 0])
    elif kind in ("nan", "inf"):
        vol[3, 3, 3] = np.nan if kind == "nan" else np.inf
        path = testing.write_nifti(mr / "s9.nii.gz", vol)
    elif kind == "constant":
        path = testing.write_nifti(mr / "s9.nii.gz", np.full((10, 12, 8), 3.0, np.float32))
    elif kind == "empty_folder":
        for f in mr.iterdir():
            f.unlink()
        path = mr
    elif kind == "non_image_png":
        path = root / "us" / "018_HC.png"
        path.write_text("this is not a png")
        testing.write_png(root / "us" / "018_HC_Annotation.png",
                          testing.us_head_image()[1].astype(np.uint8) * 255)
    return path


BAD_INPUTS = ["corrupt", "truncated", "4d", "2d", "nan", "inf", "constant", "empty_folder",
              "non_image_png"]


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_fails_cleanly_through_api_and_cli(tmp_path, source, kind):
    bad = _make_bad(source, kind)
    out = tmp_path / "out" / "ds"
    with pytest.raises(DataError) as info:
        prepare_dataset(_config(source), out)
    assert str(bad) in str(info.value)
    assert not out.exists()

    config = tmp_path / "prep.yaml"
    config.write_text(yaml.safe_dump(_config(source)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "usmr_tf.cli.main", "prepare", str(config),
                           "--out", str(out)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no temp dirs left


def test_cli_prepares_then_reuses(tmp_path, source):
    config = tmp_path / "prep.yaml"
    config.write_text(yaml.safe_dump(_config(source)))
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "usmr_tf.cli.main", "prepare", str(config), "--out", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "prepared" in first.stdout and cache.read_manifest(out)["counts"]["mr"]["train"] > 0
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "up to date" in second.stdout


def test_config_errors(tmp_path, source):
    with pytest.raises(ConfigError, match="unknown config keys"):
        prepare_dataset(dict(_config(source), sizes=3), tmp_path / "ds")
    bad_kind = _config(source)
    bad_kind["mr"][0]["kind"] = "dicom"
    with pytest.raises(ConfigError, match="kind"):
        prepare_dataset(bad_kind, tmp_path / "ds")
    (tmp_path / "bad.yaml").write_text("size: [unclosed")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(tmp_path / "bad.yaml")
    missing = _config(source)
    missing["mr"][0]["root"] = "nowhere"
    with pytest.raises(DataError, match="not found"):
        prepare_dataset(missing, tmp_path / "ds")


@pytest.mark.parametrize("recipe", ["hc18_fetal_mr.yaml", "hc18_all_mr.yaml"])
def test_recipes_prepare_real_data(tmp_path, shared_data, repo_root, recipe):
    config = load_config(repo_root / "recipes" / "data" / recipe)
    for modality in ("us", "mr"):
        for src in config[modality]:
            src["limit"] = 3  # a few files per source keeps this fast
    out, manifest, _ = prepare_dataset(config, tmp_path / "ds", data_root=shared_data)
    assert manifest["counts"]["us"]["train"] + manifest["counts"]["us"]["test"] == 3
    images, meta = cache.load_prepared(out, "train", modality="mr")
    assert images.shape[1:] == (128, 128, 1) and len(images) > 20
    subjects = {s: {m["subject"] for m in cache.load_prepared(out, s, modality="mr")[1]}
                for s in ("train", "test")}
    assert not subjects["train"] & subjects["test"]
