"""The bundled sample set (issue 9): small, listed, licensed, held out from the preset."""

import hashlib
import pathlib
import re

import pytest
from newcomer_helpers import REPO, SAMPLE

from usmr_tf.data import prepare
from usmr_tf.data.splits import split_subjects

# The data recipe of the preset being shipped (fetal_hc18_v2; as examples/demo.py DATA_CONFIG).
# If the preset is re-trained on another recipe, change it here and in demo.py, and re-check
# that the sample set is still held out from that recipe's training split.
PRESET_RECIPE = REPO / "recipes" / "data" / "preset_v2.yaml"
DATA_SUFFIXES = (".png", ".nii.gz", ".csv")


def _sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _manifest(path):
    rows = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip().removeprefix("./"): digest for digest, name in rows}


def _data_files():
    return sorted(p.relative_to(SAMPLE).as_posix() for p in SAMPLE.rglob("*")
                  if p.is_file() and p.name.endswith(DATA_SUFFIXES))


def test_sample_set_is_small_and_every_data_file_is_in_its_manifest():
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 5e6, f"sample set is {total / 1e6:.1f} MB"
    manifest = _manifest(SAMPLE / "MANIFEST.sha256")
    assert sorted(manifest) == _data_files()
    for name, digest in manifest.items():
        assert _sha256(SAMPLE / name) == digest, name


def test_sources_licences_and_attribution_are_listed():
    sources = (SAMPLE / "SOURCES.md").read_text()
    for group in ("us/hc18", "spina_bifida_fidon2021", "mialsrtk_sub-01"):
        assert group in sources
    for licence in ("CC BY 4.0", "CC0"):
        assert licence in sources
    assert "preset_v2.yaml" in sources
    attribution = (SAMPLE / "us" / "hc18" / "ATTRIBUTION.md").read_text()
    assert "van den Heuvel" in attribution and "10.5281/zenodo.1322001" in attribution
    images = sorted((SAMPLE / "us" / "hc18" / "training_set").glob("*HC.png"))
    assert len(images) >= 4
    for image in images:
        assert image.name in attribution
        assert image.with_name(image.stem + "_Annotation.png").is_file(), image
    assert "CC0" in (SAMPLE / "mr" / "spina_bifida_fidon2021" / "LICENSE.txt").read_text()
    mial = SAMPLE / "mr" / "mialsrtk_sub-01"
    notice = " ".join((mial / "ATTRIBUTION.md").read_text().split())
    assert "CC0" in notice and "Tourbier" in notice and "10.5281/zenodo.4290209" in notice
    assert '"License": "CCO"' in (mial / "dataset_description.json").read_text()
    # Apache-2.0 data (SVRTK) needs its NOTICE beside it, wherever it comes back
    for folder in (SAMPLE / "mr").glob("svrtk*"):
        assert "Apache License" in (folder / "NOTICE").read_text(), folder


def test_nothing_from_the_crl_atlas_is_in_the_repository():
    tracked = (REPO / "examples").rglob("*")
    names = [p.as_posix() for p in tracked if p.is_file()]
    assert not [n for n in names if re.search(r"crl|niftymic|/STA\d+", n, re.IGNORECASE)]


def test_files_are_byte_copies_of_the_shared_data(shared_data):
    shared = _manifest(shared_data / "MANIFEST.sha256")
    crl = {d for n, d in shared.items() if n.startswith("mr/crl_sta2017_niftymic/")}
    for name in _data_files():
        digest = _sha256(SAMPLE / name)
        assert digest not in crl, name
        if name.endswith(".csv"):  # filtered to the sample's rows: check those rows instead
            original = (shared_data / name).read_text().splitlines()
            assert set((SAMPLE / name).read_text().splitlines()) <= set(original)
        else:
            assert shared[name] == digest, name


def _preset_split(shared_data):
    """The preset recipe's split, as `prepare.prepare_arrays` makes it (without reading the
    images): per modality, the sources not held out are split by subject into train/test;
    every file of a `holdout: true` source goes to "heldout"."""
    config = prepare.resolve_config(prepare.load_config(PRESET_RECIPE), shared_data)
    splits = {}
    for modality, items in prepare.input_files(config).items():
        pool = [s for src, _, s, _ in items if not src["holdout"]]
        train, test = split_subjects(pool, config["test_fraction"], config["seed"])
        train_files = set()
        for src, path, subject, mask in items:
            if not src["holdout"] and subject in train:
                train_files |= {pathlib.Path(p).relative_to(shared_data).as_posix()
                                for p in (path, mask) if p is not None}
        splits[modality] = {"train": set(train), "test": set(test),
                            "heldout": {s for src, _, s, _ in items if src["holdout"]},
                            "train_files": train_files}
    return splits


def test_no_sample_file_was_used_to_train_the_preset(shared_data):
    preset = _preset_split(shared_data)
    sample = prepare.input_files(prepare.resolve_config(
        prepare.load_config(SAMPLE / "usmr_sample.yaml"), SAMPLE))
    assert set(sample) == {"us", "mr"}
    for modality, items in sample.items():
        unseen = preset[modality]["test"] | preset[modality]["heldout"]
        for _, path, subject, mask in items:
            # subject ids are "group/id": the sample keeps the recipe's groups, so every
            # sample subject must be one of the recipe's test or held-out subjects
            assert subject in unseen, (path, subject)
            assert subject not in preset[modality]["train"], path
            for p in (path, mask):  # and no file is (at the same path) a training file
                if p is not None:
                    rel = pathlib.Path(p).relative_to(SAMPLE).as_posix()
                    assert rel not in preset[modality]["train_files"], rel
    us = {s for _, _, s, _ in sample["us"]}
    assert us and us <= preset["us"]["test"]
    mr = {s for _, _, s, _ in sample["mr"]}
    # preset_v2: spina bifida GA24 is the MR test subject, MIAL sub-01 the held-out fetus
    assert mr & preset["mr"]["test"] and mr & preset["mr"]["heldout"]


def test_no_sample_file_has_the_content_of_a_training_file(shared_data):
    """Byte-level: no sample data file equals any file of the preset's training split
    (whatever its path), and none equals a file of the CRL atlas."""
    preset = _preset_split(shared_data)
    shared = _manifest(shared_data / "MANIFEST.sha256")
    banned = {shared[name] for m in preset.values() for name in m["train_files"]}
    banned |= {d for n, d in shared.items() if n.startswith("mr/crl_sta2017_niftymic/")}
    assert banned
    for name in _data_files():
        assert _sha256(SAMPLE / name) not in banned, name
