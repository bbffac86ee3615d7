"""`usmr export` from a `.keras` checkpoint saved like `usmr train` does."""

import keras
import numpy as np
import yaml

from usmr_tf.cli.main import main
from usmr_tf.export import read_metadata
from usmr_tf.export.runtimes import SavedModelRunner, random_us_batch


def test_export_from_keras_checkpoint(full_model, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    full_model.save(str(run / "model.keras"))
    (run / "recipe.yaml").write_text(yaml.safe_dump(
        {"name": "phantom_quick", "model": {"name": "ours", "base_filters": 4, "depth": 2},
         "data": {"source": "phantoms", "image_size": 32}}))
    out = tmp_path / "saved_models"
    argv = ["export", "--checkpoint", str(run / "model.keras"), "--name", "quick",
            "--out", str(out), "--slice-axis", "0"]
    assert main(argv) == 0
    assert "exported" in capsys.readouterr().out
    runner = SavedModelRunner(out / "quick")
    x = random_us_batch(2, 32, seed=9)
    want = keras.ops.convert_to_numpy(full_model.generator(x, training=False))
    np.testing.assert_allclose(runner(x), want, atol=1e-5)
    info = read_metadata(out / "quick")
    assert info["slice_axis"] == 0
    assert "phantoms" in info["training_data"] and "phantom_quick" in info["training_data"]
    assert info["versions"]["1"]["checkpoint"].endswith("model.keras")
    # a second export becomes version 2; an explicit existing version is refused
    assert main(argv) == 0
    assert read_metadata(out / "quick")["latest_version"] == 2
    assert main(argv + ["--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_export_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a zip")
    assert main(["export", "--checkpoint", str(bad), "--name", "x", "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "model.keras" in err and "cannot load" in err
    assert main(["export", "--checkpoint", str(tmp_path / "nope.keras"), "--name", "x"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "out" / "x").exists()


def test_export_from_a_runs_weights_file(full_model, tmp_path, capsys):
    """`RUN/best.weights.h5` (the validation callback's pick): the model comes from recipe.yaml."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    recipe = {"name": "phantom_quick", "model": {"name": "ours", "base_filters": 4, "depth": 2},
              "data": {"source": "phantoms", "image_size": 32}}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    full_model.save_weights(str(run / "best.weights.h5"))
    full_model.save_weights(str(run / "checkpoints" / "epoch0005.weights.h5"))
    x = random_us_batch(2, 32, seed=3)
    want = keras.ops.convert_to_numpy(full_model.generator(x, training=False))
    for i, ckpt in enumerate([run / "best.weights.h5", run / "checkpoints" / "epoch0005.weights.h5"]):
        out = tmp_path / f"saved_models{i}"
        assert main(["export", "--checkpoint", str(ckpt), "--name", "quick", "--out", str(out)]) == 0
        np.testing.assert_allclose(SavedModelRunner(out / "quick")(x), want, atol=1e-5)
        assert "phantom_quick" in read_metadata(out / "quick")["training_data"]
    # without the run's recipe, or with a truncated file: one clear error, nothing written
    lone = tmp_path / "lone.weights.h5"
    lone.write_bytes((run / "best.weights.h5").read_bytes()[:100])
    assert main(["export", "--checkpoint", str(lone), "--name", "x", "--out", str(tmp_path / "o")]) == 2
    assert "recipe.yaml" in capsys.readouterr().err
    (run / "bad.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"0" * 50)
    assert main(["export", "--checkpoint", str(run / "bad.weights.h5"), "--name", "x",
                 "--out", str(tmp_path / "o")]) == 2
    assert "cannot load the weights" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("saved_model.pb"))
