import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from usmr_tf.data import cache, testing
from usmr_tf.data.prepare import input_files, load_config, prepare_dataset, resolve_config
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


# --- plane matching (issue 6): band, fill, rotate --------------------------------------


def _longer_side(image):
    rows, cols = np.nonzero(image[..., 0] > -1)
    return max(np.ptp(rows), np.ptp(cols)) + 1


def _mr_images(out):
    return np.concatenate([cache.load_prepared(out, s, modality="mr")[0]
                           for s in ("train", "test")])


def test_plane_options_reach_the_volumes(tmp_path, source):
    plain = _mr_images(prepare_dataset(_config(source), tmp_path / "plain")[0])
    config = _config(source)
    config["mr"][0].update(band=[0.4, 0.6], fill=0.5, rotate=90)
    out, manifest, _ = prepare_dataset(config, tmp_path / "matched")
    matched = _mr_images(out)
    assert manifest["params"]["mr"][0]["band"] == [0.4, 0.6]
    assert 0 < len(matched) < len(plain) / 2  # 5 volumes, a fifth of each
    # fill 0.5: the brain's longer side spans 16 of 32 px (+ edge blur); default ~29 px.
    assert max(_longer_side(x) for x in matched) <= 0.5 * SIZE + 3
    assert max(_longer_side(x) for x in plain) >= 0.85 * SIZE
    _, meta = cache.load_prepared(out, "train", modality="mr")
    geometry = SliceGeometry.from_dict(meta[0]["geometry"])
    assert geometry.rotation == 90.0
    rows = [i for i, m in enumerate(meta) if m["source"] == meta[0]["source"]]
    images, _ = cache.load_prepared(out, "train", modality="mr")
    assert slices_to_volume(images[rows], geometry).shape == (20, 24, 16)


@pytest.mark.parametrize("key, value, match", [
    ("band", [0.6, 0.4], "band"), ("band", 0.5, "band"), ("band", [0, "x"], "band"),
    ("fill", 0, "fill"), ("fill", 1.2, "fill"), ("fill", "big", "fill"),
    ("rotate", "left", "rotate"), ("rotate", True, "rotate"),
])
def test_bad_plane_options_are_config_errors(tmp_path, source, key, value, match):
    config = _config(source)
    config["mr"][0][key] = value
    with pytest.raises(ConfigError, match=rf"mr\[0\] \(vols\): {match}"):
        prepare_dataset(config, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def _long_axis_angle(image):
    rows, cols = np.nonzero(image > -1)
    _, vectors = np.linalg.eigh(np.cov(np.stack([rows, cols]).astype(float)))
    return float(np.degrees(np.arctan2(abs(vectors[0, -1]), abs(vectors[1, -1]))))


def _central_length(image, half=8):
    centre = image.shape[0] // 2
    cols = np.flatnonzero((image[centre - half:centre + half] > -1).any(axis=0))
    return cols[-1] - cols[0] + 1


def test_preset_recipe_matches_hc18_planes(tmp_path, shared_data, repo_root):
    """The shipped model's data: CC0 MR only, trans-thalamic band, HC18-sized, levelled."""
    config = load_config(repo_root / "recipes" / "data" / "preset_hc18_cc0.yaml")
    assert not any("crl" in str(src["root"]).lower() for src in config["mr"])  # licence
    out, manifest, _ = prepare_dataset(config, tmp_path / "ds", data_root=shared_data)
    counts = manifest["counts"]
    assert counts["us"] == {"train": 166, "test": 41}
    assert 50 < counts["mr"]["train"] + counts["mr"]["test"] < 120  # a band, not all ~280
    images, meta = cache.load_prepared(out, "train", modality="mr")
    assert {m["dataset"] for m in meta} == {"spina_bifida", "mialsrtk_sr", "mialsrtk_stacks"}
    # HC18 skull at head_fraction 0.8: its inner edge spans 0.8 x 0.90 x 128 = 92 px.
    lengths = [_central_length(x[..., 0]) for x in images]
    assert 84 <= np.median(lengths) <= 98, np.median(lengths)
    # Occipito-frontal axis horizontal, as in the aligned HC18 images (masked sources).
    masked = [x for x, m in zip(images, meta) if m["dataset"] != "mialsrtk_sr"]
    assert np.median([_long_axis_angle(x[..., 0]) for x in masked]) < 5
    us, _ = cache.load_prepared(out, "train", modality="us")
    assert np.median([_long_axis_angle(x[..., 0]) for x in us]) < 5


def test_crl_recipe_lists_only_the_crl_atlas(shared_data, repo_root):
    if not (shared_data / "mr" / "crl_sta2017_niftymic").is_dir():
        pytest.skip("the CRL atlas is absent (it may not be redistributed)")
    config = resolve_config(load_config(repo_root / "recipes" / "data" / "crl.yaml"),
                            shared_data)
    files = input_files(config)
    names = sorted(path.name for _, path, _, _ in files["mr"])
    assert names == [f"STA{ga}.nii.gz" for ga in range(21, 26)]
    assert all(mask.exists() for _, _, _, mask in files["mr"])
    assert config["mr"][0]["band"] and config["mr"][0]["fill"] == 0.72


# --- leave-one-source-out (issue 11): holdout ------------------------------------------


def _holdout_config(root):
    config = _config(root)
    config["mr"] = [
        {"name": "vols", "kind": "nifti", "root": "mr", "pattern": "s[1-3]*.nii.gz",
         "subject": r"(s\d+)"},
        {"name": "left_out", "kind": "nifti", "root": "mr", "pattern": "s4.nii.gz",
         "subject": r"(s\d+)", "holdout": True},
    ]
    return config


def test_holdout_source_goes_only_to_the_heldout_split(tmp_path, source):
    logged = []
    out, manifest, _ = prepare_dataset(_holdout_config(source), tmp_path / "ds",
                                       log=logged.append)
    counts = manifest["counts"]
    assert set(counts["mr"]) == {"train", "test", "heldout"} and counts["mr"]["heldout"] > 0
    assert set(counts["us"]) == {"train", "test"}  # no held-out US source: no such split
    meta = {s: cache.load_prepared(out, s, modality="mr")[1] for s in counts["mr"]}
    assert {m["dataset"] for m in meta["heldout"]} == {"left_out"}
    assert {m["subject"] for m in meta["heldout"]} == {"left_out/s4"}
    assert {m["dataset"] for m in meta["train"] + meta["test"]} == {"vols"}
    # the other source keeps its subject split: 3 subjects (s1 twice) -> 1 test subject
    assert len({m["subject"] for m in meta["test"]}) == 1
    assert not {m["subject"] for m in meta["train"]} & {m["subject"] for m in meta["test"]}
    images, _ = cache.load_prepared(out / "mr", "heldout")
    assert images.shape == (counts["mr"]["heldout"], SIZE, SIZE, 1)
    assert any("heldout" in line for line in logged if line.startswith("mr:"))
    assert any(line.strip().startswith("left_out: 0 train / 0 test /") for line in logged)
    # The same subjects as without the held-out source (its ids are another group).
    plain = _holdout_config(source)
    plain["mr"] = plain["mr"][:1]
    out2, _, _ = prepare_dataset(plain, tmp_path / "plain")
    for split in ("train", "test"):
        a, _ = cache.load_prepared(out, split, modality="mr")
        b, _ = cache.load_prepared(out2, split, modality="mr")
        assert np.array_equal(a, b)
    with pytest.raises(DataError, match="no held-out split"):
        cache.load_prepared(out2, "heldout", modality="mr")


@pytest.mark.parametrize("change, match", [
    ("shared_group", "held-out and training sources"),
    ("all_held", "nothing left to train on"),
    ("not_bool", "holdout must be true or false"),
    ("top_level", "unknown config keys"),
])
def test_bad_holdout_configs(tmp_path, source, change, match):
    config = _holdout_config(source)
    if change == "shared_group":  # held-out subjects would leak into train/test
        for src in config["mr"]:
            src["group"] = "same"
    elif change == "all_held":
        config["mr"][0]["holdout"] = True
    elif change == "not_bool":
        config["mr"][1]["holdout"] = "yes"
    else:
        config["holdout"] = True
    with pytest.raises(ConfigError, match=match):
        prepare_dataset(config, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_preset_v2_holds_out_the_mial_fetus(tmp_path, shared_data, repo_root):
    """Preset data v2: SVRTK + spina bifida for training, MIAL sub-01 only in `heldout`."""
    config = load_config(repo_root / "recipes" / "data" / "preset_v2.yaml")
    assert not any("crl" in str(src["root"]).lower() or "crl" in src.get("pattern", "").lower()
                   for src in config["mr"])  # licence
    config["size"] = 64
    out, manifest, _ = prepare_dataset(config, tmp_path / "ds", data_root=shared_data)
    counts = manifest["counts"]
    assert counts["us"] == {"train": 166, "test": 41}
    assert counts["mr"]["heldout"] == 16 and counts["mr"]["train"] > 80
    meta = {s: cache.load_prepared(out, s, modality="mr")[1] for s in counts["mr"]}
    assert {m["dataset"] for m in meta["heldout"]} == {"mialsrtk_sr", "mialsrtk_stacks"}
    assert {m["dataset"] for m in meta["train"]} >= {"spina_bifida", "svrtk_template",
                                                     "svrtk_head"}
    assert not any(m["subject"].startswith("mialsrtk") for m in meta["train"] + meta["test"])
    # The SVRTK slices (LAS on disk) match the others in size and orientation at 64 px.
    images, _ = cache.load_prepared(out, "train", modality="mr")
    svrtk = [x[..., 0] for x, m in zip(images, meta["train"]) if m["dataset"].startswith("svrtk")]
    assert 42 <= np.median([_central_length(x, 4) for x in svrtk]) <= 49
    assert np.median([_long_axis_angle(x) for x in svrtk]) < 8


# --- more planes per volume (tilts) and per-group splits (preset data v3) ---------------


def test_tilts_add_oblique_slice_sets_that_cannot_be_put_back(tmp_path, source):
    plain = prepare_dataset(_config(source), tmp_path / "plain")[1]["counts"]["mr"]
    config = _config(source)
    config["mr"][0]["tilts"] = [-10, 0, 10]
    out, manifest, _ = prepare_dataset(config, tmp_path / "tilted")
    counts = manifest["counts"]["mr"]
    assert manifest["params"]["mr"][0]["tilts"] == [-10.0, 0.0, 10.0]
    # about three times the slices, the same subjects in each split
    assert 2.5 * sum(plain.values()) <= sum(counts.values()) <= 3.5 * sum(plain.values())
    images, meta = cache.load_prepared(out, "train", modality="mr")
    assert {m["tilt"] for m in meta} == {-10.0, 0.0, 10.0}
    flat = [i for i, m in enumerate(meta) if m["tilt"] == 0.0 and m["source"] == meta[0]["source"]]
    assert slices_to_volume(images[flat], SliceGeometry.from_dict(meta[flat[0]]["geometry"])
                            ).shape == (20, 24, 16)
    tilted = [i for i, m in enumerate(meta) if m["tilt"] == 10.0]
    with pytest.raises(ValueError, match="tilted"):
        slices_to_volume(images[tilted[:1]], SliceGeometry.from_dict(meta[tilted[0]]["geometry"]))


@pytest.mark.parametrize("tilts", [[], [0, 0], [50], ["x"], 5, [True]])
def test_bad_tilts_are_config_errors(tmp_path, source, tilts):
    config = _config(source)
    config["mr"][0]["tilts"] = tilts
    with pytest.raises(ConfigError, match=r"mr\[0\] \(vols\): tilts"):
        prepare_dataset(config, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def _us_test_exams(out):
    return sorted(m["subject"] for m in cache.load_prepared(out, "test", modality="us")[1])


def test_per_group_split_keeps_each_groups_split_when_a_source_is_added(tmp_path, source):
    extra = source / "us_more"
    for i, name in enumerate(["020_HC", "022_HC", "024_HC", "026_HC"]):
        image, head = testing.us_head_image(angle=0.2 * i, seed=10 + i)
        testing.write_png(extra / f"{name}.png", image)
        testing.write_png(extra / f"{name}_Annotation.png", head.astype(np.uint8) * 255)
    base = _config(source)
    base["split"] = "per_group"
    alone = _us_test_exams(prepare_dataset(base, tmp_path / "alone")[0])
    both = dict(base, us=base["us"] + [{"name": "more", "kind": "hc18", "root": "us_more"}])
    out = prepare_dataset(both, tmp_path / "both")[0]
    together = _us_test_exams(out)
    assert [s for s in together if s.startswith("hc/")] == alone
    assert any(s.startswith("more/") for s in together)  # each group has test exams
    pooled = _us_test_exams(prepare_dataset(dict(both, split="pooled"), tmp_path / "pooled")[0])
    assert len(pooled) == round(0.25 * 8)  # one split over both groups' 8 exams
    with pytest.raises(ConfigError, match="split must be one of"):
        prepare_dataset(dict(base, split="random"), tmp_path / "bad")


def test_preset_v3_adds_hc18_more_and_keeps_v2s_test_exams(tmp_path, shared_data, repo_root):
    """Preset data v3: both HC18 folders split per group (us/hc18 keeps v2's test exams),
    oblique MR planes, MIAL still held out, no CRL atlas. US only here (the MR part takes
    minutes; its tilts are checked on the config)."""
    v3 = load_config(repo_root / "recipes" / "data" / "preset_v3.yaml")
    v2 = load_config(repo_root / "recipes" / "data" / "preset_v2.yaml")
    assert v3["split"] == "per_group" and len(v3["tilts"]) == 5
    assert not any("crl" in str(src["root"]).lower() or "crl" in src.get("pattern", "").lower()
                   for src in v3["mr"])  # licence
    assert {s["name"] for s in v3["mr"] if s.get("holdout")} == {"mialsrtk_sr", "mialsrtk_stacks"}
    exams = {}
    for name, config in (("v2", v2), ("v3", v3)):
        config = dict(config, size=32)
        config.pop("mr")
        out, manifest, _ = prepare_dataset(config, tmp_path / name, data_root=shared_data)
        exams[name] = _us_test_exams(out)
        exams[name + "_counts"] = manifest["counts"]["us"]
    assert exams["v3_counts"] == {"train": 358, "test": 84}
    assert [s for s in exams["v3"] if s.startswith("hc18/")] == exams["v2"]


def test_preset_v3_planar_is_v3_without_oblique_planes(repo_root):
    v3 = load_config(repo_root / "recipes" / "data" / "preset_v3.yaml")
    planar = load_config(repo_root / "recipes" / "data" / "preset_v3_planar.yaml")
    assert planar["tilts"] == [0] and len(v3["tilts"]) == 5
    assert {k: v for k, v in planar.items() if k != "tilts"} == \
        {k: v for k, v in v3.items() if k != "tilts"}


def _volume_with_bar(seed=0):
    """A head volume with a bright bar above the head in its middle slices (axis 2), apart
    from the head by a gap of background, like the MIAL super-resolution volume's mask scraps."""
    head = testing.head_volume((40, 48, 16), seed=seed)
    volume = np.pad(head, ((12, 0), (0, 0), (0, 0)))  # the head's top edge at row ~16
    volume[1:8, 12:36, 5:11] = head.max()  # the bar, 7 rows thick, apart by ~8 rows
    return volume


def test_drop_detached_removes_a_bar_and_leaves_the_recipe_key_of_sources_without_it(
        tmp_path):
    """`drop_detached: true` (one source's option): the bar above the head is gone from the
    prepared slices, the head is not; a recipe without the key, or with it false, prepares
    the same slices under the same key as before the option existed."""
    root = tmp_path / "data"
    for i in range(4):
        testing.write_nifti(root / "mr" / f"s{i}.nii.gz", _volume_with_bar(seed=i))
        testing.write_nifti(root / "other" / f"o{i}.nii.gz", _volume_with_bar(seed=10 + i))
    source = {"kind": "nifti", "axis": 2, "fill": 0.7, "tilts": [-5, 0]}
    config = {"data_root": str(root), "size": SIZE, "test_fraction": 0.25, "seed": 0,
              "mr": [dict(source, name="vols", root="mr", subject=r"(s\d+)"),
                     dict(source, name="other", root="other", subject=r"(o\d+)")]}
    resolved = resolve_config(config)
    assert "drop_detached" not in resolved["mr"][0]  # absent from the key's config
    off = dict(config, mr=[dict(config["mr"][0], drop_detached=False), config["mr"][1]])
    out_plain, plain, _ = prepare_dataset(config, tmp_path / "plain")
    _, off_manifest, _ = prepare_dataset(off, tmp_path / "off")
    assert off_manifest["key"] == plain["key"]
    on = dict(config, mr=[dict(config["mr"][0], drop_detached=True), config["mr"][1]])
    out_on, on_manifest, _ = prepare_dataset(on, tmp_path / "on")
    assert on_manifest["key"] != plain["key"]
    assert on_manifest["params"]["mr"][0]["drop_detached"] == [-0.8, 1]
    assert "drop_detached" not in on_manifest["params"]["mr"][1]
    for split in ("train", "test"):
        a, meta_a = cache.load_prepared(out_plain, split, modality="mr")
        b, meta_b = cache.load_prepared(out_on, split, modality="mr")
        assert [m["slice_index"] for m in meta_a] == [m["slice_index"] for m in meta_b]
        changed = np.flatnonzero([not np.array_equal(x, y) for x, y in zip(a, b)])
        assert {meta_a[i]["dataset"] for i in changed} == {"vols"}  # the other source untouched
        flat = [i for i in changed if meta_a[i]["tilt"] == 0]
        volumes = len({m["source"] for m in meta_a if m["dataset"] == "vols"})
        assert len(flat) == 6 * volumes  # the bar's 6 slices of each untilted volume, no other
        assert len(changed) - len(flat) >= 6 * volumes  # a tilted cut meets the bar too
        for i in changed:
            lost = (a[i] > -1) & (b[i] == -1)
            assert lost.any() and np.array_equal(b[i][~lost], a[i][~lost])
            # what was lost is a band in the top rows, not the head's middle
            rows = np.flatnonzero(lost[..., 0].any(axis=1))
            assert rows.max() < SIZE // 3
            assert (b[i][: rows.max() + 1] == -1).all()  # nothing above the head is left


@pytest.mark.parametrize("kind, value, match", [
    ("nifti", "yes", "drop_detached must be true or false"),
    ("hc18", True, "drop_detached is for NIfTI sources"),
])
def test_bad_drop_detached_is_a_config_error(tmp_path, source, kind, value, match):
    config = _config(source)
    if kind == "nifti":
        config["mr"][0]["drop_detached"] = value
    else:
        config["us"][0]["drop_detached"] = value
    with pytest.raises(ConfigError, match=match):
        prepare_dataset(config, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_preset_v3_recipes_drop_the_mial_bar_only(repo_root):
    """Data v3 (and its planar sibling) clean the two held-out MIAL sources only: no training
    source loses detached anatomy (a cerebellum cut apart from the cerebrum)."""
    for name in ("preset_v3.yaml", "preset_v3_planar.yaml"):
        config = load_config(repo_root / "recipes" / "data" / name)
        dropped = {s["name"] for s in config["mr"] if s.get("drop_detached")}
        assert dropped == {s["name"] for s in config["mr"] if s.get("holdout")} == \
            {"mialsrtk_sr", "mialsrtk_stacks"}
