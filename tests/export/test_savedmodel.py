"""SavedModel export: variable list, signatures, layout, fresh-process load, saved_model_cli."""

import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from usmr_tf.errors import ConfigError
from usmr_tf.export import export_savedmodel, list_versions, read_metadata
from usmr_tf.export.runtimes import SavedModelRunner, random_us_batch

IMAGE_SIZE = 32  # tests/export/conftest.py exports a 32 x 32 model

VENV_BIN = pathlib.Path(sys.executable).parent


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _tf_name(variable):
    return variable.name.split(":")[0]


def test_export_holds_only_inference_variables(exported, full_model):
    exported_names = sorted(_tf_name(v) for v in SavedModelRunner(exported).variables)
    generator_ids = {id(v) for v in full_model.generator.variables}
    training_only = [v for v in full_model.variables if id(v) not in generator_ids]
    # The full model must have training-only parts for this test to mean anything.
    assert training_only, "full model has no discriminator / EdgeNet variables to leave out"
    assert len(exported_names) == len(full_model.generator.variables)
    assert sorted(v.path for v in full_model.generator.variables) == exported_names
    training_only_paths = {v.path for v in training_only}
    assert not training_only_paths & set(exported_names)
    for name in exported_names:
        for part in ("discriminator", "edge_net", "back_encoder", "back_decoder", "us_decoder_top"):
            assert part not in name, name
    for part in ("anatomy_encoder", "us_decoder", "mr_decoder", "cross_modal_attention"):
        assert any(f"/{part}/" in name for name in exported_names), part


def test_each_weight_is_stored_once(exported, full_model):
    reader = tf.train.load_checkpoint(str(exported / "variables" / "variables"))
    shapes = reader.get_variable_to_shape_map()
    stored = sum(int(np.prod(shape)) for key, shape in shapes.items()
                 if key != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert stored == full_model.generator.count_params()


def test_export_refuses_training_only_variables(tmp_path):
    disc = keras.Sequential(
        [keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1)),
         keras.layers.Conv2D(1, 3, padding="same", name="structural_discriminator_conv")]
    )
    with pytest.raises(ConfigError, match="training-only"):
        export_savedmodel(disc, tmp_path, "bad")
    assert list_versions(tmp_path / "bad") == []


def test_serving_default_signature_matches_generator(exported, full_model):
    loaded = tf.saved_model.load(str(exported))
    fn = loaded.signatures["serving_default"]
    spec = fn.structured_input_signature[1]["us_image"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, IMAGE_SIZE, IMAGE_SIZE, 1]
    assert list(fn.structured_outputs) == ["mri_image"]
    x = random_us_batch(3, IMAGE_SIZE, seed=1)
    got = fn(us_image=tf.constant(x))["mri_image"].numpy()
    want = keras.ops.convert_to_numpy(full_model.generator(x, training=False))
    assert got.shape == (3, IMAGE_SIZE, IMAGE_SIZE, 1)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_predict_png_signature(exported, full_model):
    runner = SavedModelRunner(exported)
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    rgb = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    outputs = runner.predict_png([_png(grey), _png(rgb)])
    assert len(outputs) == 2
    first, second = (Image.open(io.BytesIO(b)) for b in outputs)
    assert first.format == "PNG" and first.mode == "L"
    assert first.size == (IMAGE_SIZE, IMAGE_SIZE)
    assert second.size == (70, 40)  # same width x height as the input
    # For an S x S grey input, pad/resize are the identity: the PNG is the quantised generator.
    x = grey.astype(np.float32)[None, ..., None] / 127.5 - 1.0
    y = keras.ops.convert_to_numpy(full_model.generator(x, training=False))[0, ..., 0]
    want = np.round(np.clip((y + 1.0) * 127.5, 0, 255))
    assert np.max(np.abs(np.asarray(first, dtype=np.float32) - want)) <= 1.0


def test_layout_versions_and_metadata(tmp_path, full_model):
    first = export_savedmodel(full_model, tmp_path, "m", metadata={"slice_axis": 1})
    second = export_savedmodel(full_model, tmp_path, "m")
    assert (first.name, second.name) == ("1", "2")
    assert (first / "saved_model.pb").exists() and (second / "variables").is_dir()
    assert list_versions(tmp_path / "m") == [1, 2]
    info = read_metadata(tmp_path / "m")
    assert info["latest_version"] == 2 and sorted(info["versions"]) == ["1", "2"]
    assert info["image_size"] == IMAGE_SIZE
    assert set(info["signatures"]) == {"serving_default", "predict_png"}
    card = (tmp_path / "m" / "MODEL_CARD.md").read_text()
    assert "not for diagnosis" in card
    assert "(`--align auto`, the default)" in card  # raw images are aligned before synthesis
    # no staging folders left behind; an existing version is not overwritten
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2", "MODEL_CARD.md",
                                                                  "usmr.json"]
    with pytest.raises(ConfigError, match="already exists"):
        export_savedmodel(full_model, tmp_path, "m", version=2)
    assert json.loads((tmp_path / "m" / "usmr.json").read_text())["latest_version"] == 2


FRESH_PROCESS = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NoUsmr(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "usmr_tf":
                raise ModuleNotFoundError("usmr_tf is blocked in this process")
            return None

    sys.meta_path.insert(0, _NoUsmr())
    try:
        import usmr_tf  # noqa: F401
        raise SystemExit("usmr_tf was importable")
    except ModuleNotFoundError:
        pass

    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(sys.argv[1])
    x = np.load(sys.argv[2])
    y = loaded.signatures["serving_default"](us_image=tf.constant(x))["mri_image"].numpy()
    np.save(sys.argv[3], y)
    assert not any(m.split(".")[0] == "usmr_tf" for m in sys.modules)
    print("OK", sorted(loaded.signatures))
    """
)


def test_loads_in_fresh_process_without_usmr_tf(exported, tmp_path):
    x = random_us_batch(2, IMAGE_SIZE, seed=3)
    np.save(tmp_path / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [sys.executable, "-I", "-c", FRESH_PROCESS, str(exported), "x.npy", "y.npy"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "OK ['predict_png', 'serving_default']" in proc.stdout
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), SavedModelRunner(exported)(x),
                               atol=1e-6)


def test_saved_model_cli_show_and_run(exported, tmp_path):
    cli = VENV_BIN / "saved_model_cli"
    if not cli.exists():
        pytest.skip(f"{cli} not installed")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    show = subprocess.run([str(cli), "show", "--all", "--dir", str(exported)],
                          capture_output=True, text=True, env=env, timeout=180)
    assert show.returncode == 0, show.stderr[-2000:]
    for text in ("signature_def['serving_default']", "signature_def['predict_png']",
                 "inputs['us_image']", "outputs['mri_image']", "inputs['us_png_bytes']",
                 "outputs['mri_png_bytes']", f"shape: (-1, {IMAGE_SIZE}, {IMAGE_SIZE}, 1)"):
        assert text in show.stdout, text
    x = random_us_batch(2, IMAGE_SIZE, seed=4)
    np.save(tmp_path / "x.npy", x)
    run = subprocess.run(
        [str(cli), "run", "--dir", str(exported), "--tag_set", "serve",
         "--signature_def", "serving_default", "--inputs", f"us_image={tmp_path / 'x.npy'}",
         "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=180,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    y = np.load(tmp_path / "out" / "mri_image.npy")
    np.testing.assert_allclose(y, SavedModelRunner(exported)(x), atol=1e-6)
