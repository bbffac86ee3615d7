"""`usmr train` of a tiny locator recipe on the bundled sample set, resumed, then exported."""

import pathlib

import numpy as np
import pytest
import yaml

from usmr_tf.cli.main import main
from usmr_tf.models.head_locator.head_locator_presets import LocatorRunner

SAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples/sample_data"


def test_train_resume_and_export(tmp_path):
    recipe = {"task": "locate", "name": "tiny_locator",
              "model": {"base_filters": 4, "depth": 2, "stem_stride": 2, "height": 64,
                        "width": 96},
              "data": {"data_root": str(SAMPLE), "folders": ["us/hc18"], "test_fraction": 0.2,
                       "val_fraction": 0.2, "negatives": 4, "mr_volumes": []},
              "training": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = tmp_path / "run"
    assert main(["train", "--recipe", str(path), "--out", str(run)]) == 0
    assert (run / "split.json").is_file() and (run / "final.weights.h5").is_file()
    lines = (run / "history.csv").read_text().splitlines()
    assert len(lines) == 2
    # A second run with more epochs resumes at epoch 1 (BackupAndRestore): one row more.
    assert main(["train", "--recipe", str(path), "--out", str(run),
                 "--set", "training.epochs=2"]) == 0
    assert len((run / "history.csv").read_text().splitlines()) == 3
    assert main(["export", "--checkpoint", str(run / "final.weights.h5"), "--name", "loc",
                 "--out", str(tmp_path / "models")]) == 0
    runner = LocatorRunner(tmp_path / "models" / "loc")
    values = runner.locate_values(np.random.default_rng(0).uniform(0, 255, (120, 200)))
    assert values.shape == (7,) and np.isfinite(values).all()
    assert runner.thresholds["min_score"] > 0.5


@pytest.mark.slow  # ~45 s: two trainings and two exports; the default run keeps the geometry tests
def test_refine_stage_trains_from_an_export_and_exports_one_locator(tmp_path):
    import json

    base = {"data": {"data_root": str(SAMPLE), "folders": ["us/hc18"], "test_fraction": 0.2,
                     "val_fraction": 0.2, "negatives": 2, "mr_volumes": [], "jitters": 2},
            "training": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 2}}
    arch = {"base_filters": 4, "depth": 2, "stem_stride": 2}
    first = {"task": "locate", "name": "tiny_first", **base,
             "model": {**arch, "height": 64, "width": 96}}
    (tmp_path / "first.yaml").write_text(yaml.safe_dump(first))
    assert main(["train", "--recipe", str(tmp_path / "first.yaml"), "--out",
                 str(tmp_path / "first")]) == 0
    assert main(["export", "--checkpoint", str(tmp_path / "first/final.weights.h5"), "--name",
                 "first", "--out", str(tmp_path / "models")]) == 0
    export = tmp_path / "models" / "first"
    refine = {"task": "locate", "name": "tiny_refiner", **base,
              "model": {**arch, "height": 64, "width": 64, "stage": "refine", "fill": 0.7,
                        "first_pass": str(export)},
              "training": {**base["training"], "initial_weights": str(export)}}
    (tmp_path / "refine.yaml").write_text(yaml.safe_dump(refine))
    assert main(["train", "--recipe", str(tmp_path / "refine.yaml"), "--out",
                 str(tmp_path / "refine")]) == 0
    assert main(["export", "--checkpoint", str(tmp_path / "refine/final.weights.h5"), "--name",
                 "both", "--out", str(tmp_path / "models")]) == 0
    info = json.loads((tmp_path / "models/both/usmr.json").read_text())
    assert info["refiner"]["fill"] == 0.7 and info["input_frame"]["width"] == 96
    image = np.zeros((200, 300), np.float32)
    rows, cols = np.mgrid[0:200, 0:300]
    image[((cols - 150) / 70.0) ** 2 + ((rows - 100) / 50.0) ** 2 <= 1] = 200.0
    combined = LocatorRunner(tmp_path / "models/both").locate_values(image)
    alone = LocatorRunner(export).locate_values(image)
    assert combined.shape == (7,) and np.isfinite(combined).all()
    assert combined[5] == alone[5]  # same first passes: same score, same refusal


def test_initial_weights_from_an_export_must_match_the_architecture(tmp_path):
    from usmr_tf.errors import ConfigError
    from usmr_tf.models.head_locator.head_locator_export import assign_from_export, export_locator
    from usmr_tf.models.head_locator.head_locator_training import build_locator

    small = build_locator({"base_filters": 4, "depth": 2, "stem_stride": 2, "height": 64,
                           "width": 64})
    export_locator(small, tmp_path, "small")
    other = build_locator({"base_filters": 8, "depth": 2, "stem_stride": 2, "height": 64,
                           "width": 64})
    with pytest.raises(ConfigError, match="layers"):
        assign_from_export(other, tmp_path / "small")
    same = build_locator({"base_filters": 4, "depth": 2, "stem_stride": 2, "height": 96,
                          "width": 128})
    assign_from_export(same, tmp_path / "small")  # fully convolutional: another frame is fine
    for a, b in zip(sorted(same.weights, key=lambda v: v.path),
                    sorted(small.weights, key=lambda v: v.path)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow  # an option off by default (~25 s): the slow set (docs/testing.md)
def test_a_full_resolution_tail_warm_starts_from_a_locator_without_one(tmp_path):
    from usmr_tf.errors import ConfigError
    from usmr_tf.models.head_locator.head_locator_export import assign_from_export, export_locator
    from usmr_tf.models.head_locator.head_locator_training import build_locator

    arch = {"base_filters": 4, "depth": 2, "stem_stride": 2, "height": 64, "width": 64}
    plain = build_locator(arch)
    export_locator(plain, tmp_path, "plain")
    tailed = build_locator({**arch, "tail_filters": 3})
    fresh = {v.path: v.numpy() for v in tailed.weights}
    with pytest.raises(ConfigError, match="layers"):  # not without saying so
        assign_from_export(tailed, tmp_path / "plain")
    assign_from_export(tailed, tmp_path / "plain", new_tail=True)
    source = {v.path: v.numpy() for v in plain.weights}
    for v in tailed.weights:
        name = v.path.split("/")[-2]
        if name.startswith("tail_") or name == "head_logits":  # new, or another width
            np.testing.assert_array_equal(v.numpy(), fresh[v.path])
        else:
            np.testing.assert_array_equal(v.numpy(), source[v.path])
    # only tail layers may be missing: another U-Net is still refused
    with pytest.raises(ConfigError, match="layers"):
        assign_from_export(build_locator({**arch, "base_filters": 8, "tail_filters": 3}),
                           tmp_path / "plain", new_tail=True)


def test_recipe_checks_tail_filters(tmp_path):
    from usmr_tf.errors import ConfigError
    from usmr_tf.models.head_locator.head_locator_training import load_locator_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: locate\nmodel: {tail_filters: 16}\n")
    assert load_locator_recipe(recipe)["model"]["tail_filters"] == 16
    for bad in ("model.tail_filters=-1", "model.tail_filters=true"):
        with pytest.raises(ConfigError, match="tail_filters"):
            load_locator_recipe(recipe, [bad])
    with pytest.raises(ConfigError, match="stem_stride"):
        load_locator_recipe(recipe, ["model.stem_stride=1"])


@pytest.mark.slow  # ~60 s: two trainings and an export (docs/testing.md)
def test_export_with_a_refiner_reads_back_its_first_pass(tmp_path):
    import json

    from usmr_tf.models.head_locator.head_locator_export import export_locator, load_locator_export
    from usmr_tf.models.head_locator.head_locator_training import build_locator

    arch = {"base_filters": 4, "depth": 2, "stem_stride": 2}
    first = build_locator({**arch, "height": 64, "width": 96})
    refiner = build_locator({**arch, "height": 64, "width": 64})
    export_locator(first, tmp_path, "loc", metadata={"model": {**arch, "height": 64, "width": 96}})
    export_locator(first, tmp_path, "loc", refiner=refiner, fill=0.7, metadata={
        "model": {**arch, "height": 64, "width": 64, "stage": "refine"},
        "first_pass_model": {**arch, "height": 64, "width": 96}})
    info = json.loads((tmp_path / "loc/usmr.json").read_text())
    assert info["latest_version"] == 2 and info["refiner"]["fill"] == 0.7
    assert info["versions"]["1"]["refiner"] is None
    for version in ("1", "2"):
        back = load_locator_export(tmp_path / "loc" / version)
        assert (back.height, back.width) == (64, 96)
        for a, b in zip(sorted(back.weights, key=lambda v: v.path),
                        sorted(first.weights, key=lambda v: v.path)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    values = LocatorRunner(tmp_path / "loc").locate_values(
        np.random.default_rng(0).uniform(0, 255, (120, 200)))
    assert values.shape == (7,) and np.isfinite(values).all()


def test_a_refiner_reads_back_from_an_export_for_further_fine_tuning(tmp_path):
    from usmr_tf.errors import ConfigError
    from usmr_tf.models.head_locator.head_locator_export import (
        assign_from_export, export_has_refiner, export_locator)
    from usmr_tf.models.head_locator.head_locator_training import build_locator

    arch = {"base_filters": 4, "depth": 2, "stem_stride": 2, "height": 64, "width": 64}
    first = build_locator(arch)
    refiner = build_locator(arch)  # another initialisation: weights unlike the first pass'
    export_locator(first, tmp_path, "loc")
    export_locator(first, tmp_path, "loc", refiner=refiner, fill=0.7)
    assert not export_has_refiner(tmp_path / "loc/1") and export_has_refiner(tmp_path / "loc")
    with pytest.raises(ConfigError, match="no refiner"):
        assign_from_export(build_locator(arch), tmp_path / "loc/1", part="refiner")
    for part, expected in (("refiner", refiner), ("first_pass", first)):
        back = assign_from_export(build_locator(arch), tmp_path / "loc/2", part=part)
        kernels = [(a.numpy(), b.numpy()) for a, b in
                   zip(sorted(back.weights, key=lambda v: v.path),
                       sorted(expected.weights, key=lambda v: v.path)) if "kernel" in a.path]
        for a, b in kernels:
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in
               zip(sorted(refiner.weights, key=lambda v: v.path),
                   sorted(first.weights, key=lambda v: v.path)))
