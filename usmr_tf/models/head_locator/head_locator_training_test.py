"""`usmr train` of a tiny locator recipe on the bundled sample set, resumed, then exported."""

import pathlib

import numpy as np
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
