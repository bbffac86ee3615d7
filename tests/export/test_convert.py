"""TFLite (LiteRT), ONNX (onnxruntime) and TF.js conversions: parity with the SavedModel."""

import json
import os
import pathlib
import shutil
import subprocess

import keras
import numpy as np
import pytest

from usmr_tf.cli.main import main
from usmr_tf.errors import ConfigError
from usmr_tf.export import convert, export_savedmodel
from usmr_tf.export.runtimes import OnnxRunner, SavedModelRunner, TFLiteRunner, random_us_batch

REPO = pathlib.Path(__file__).resolve().parents[2]
PARITY = 1e-4


@pytest.fixture(scope="module")
def reference(exported):
    return SavedModelRunner(exported)


@pytest.fixture
def convertible(exported):
    """The exported model, for tests that convert it. Its graph must hold no XLA-compiled
    function (no converter handles them, see `convert.check_convertible`): a regression such as
    a dynamic-channel reshape in CrossModalAttention fails here instead of hiding."""
    assert not convert.xla_functions(exported), convert.xla_functions(exported)
    return exported


class DynamicChannels(keras.layers.Layer):
    """Reshape with -1 channels before a conv: what makes Keras compile the conv with XLA."""

    def build(self, input_shape):
        self.conv = keras.layers.Conv2D(1, 1)
        self.conv.build(input_shape)

    def call(self, x):
        b = keras.ops.shape(x)[0]
        return self.conv(keras.ops.reshape(x, (b, 8, 8, -1)))


def test_xla_functions_are_refused_with_the_cause(tmp_path):
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, DynamicChannels(name="dynamic_channels")(keras.layers.Conv2D(2, 1)(inputs)))
    version_dir = export_savedmodel(model, tmp_path, "xla", image_size=8)
    assert convert.xla_functions(version_dir)
    with pytest.raises(ConfigError, match="XLA-compiled"):
        convert.convert(version_dir, "onnx", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_tflite_float32_parity(convertible, reference, tmp_path):
    path = convert.to_tflite(convertible, tmp_path / "m.tflite")
    runner = TFLiteRunner(path)
    assert runner.image_size == reference.image_size
    for batch in (1, 5):  # the batch dimension stays dynamic
        x = random_us_batch(batch, reference.image_size, seed=batch)
        out = runner(x)
        assert out.shape == x.shape
        assert np.max(np.abs(out - reference(x))) <= PARITY


def test_tflite_dynamic_range_quantised_via_cli(convertible, reference, tmp_path, capsys):
    float_path, quant_path = tmp_path / "f.tflite", tmp_path / "q.tflite"
    assert main(["convert", "--to", "tflite", str(convertible.parent), str(float_path)]) == 0
    assert main(["convert", "--to", "tflite", "--quantize", "dynamic", str(convertible.parent),
                 str(quant_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("max |tflite - SavedModel|") == 2
    assert quant_path.stat().st_size < float_path.stat().st_size
    x = random_us_batch(4, reference.image_size, seed=11)
    error = np.max(np.abs(TFLiteRunner(quant_path)(x) - reference(x)))
    assert 0 < error < 0.5  # int8 weights: measurably different, still close


def test_onnx_parity_via_cli(convertible, reference, tmp_path, capsys):
    path = tmp_path / "m.onnx"
    assert main(["convert", "--to", "onnx", str(convertible.parent), str(path)]) == 0
    assert "max |onnx - SavedModel|" in capsys.readouterr().out
    runner = OnnxRunner(path)
    for batch in (1, 3):
        x = random_us_batch(batch, reference.image_size, seed=20 + batch)
        assert np.max(np.abs(runner(x) - reference(x))) <= PARITY


def test_convert_cli_errors(exported, tmp_path, capsys):
    existing = tmp_path / "m.onnx"
    existing.write_bytes(b"keep")
    assert main(["convert", "--to", "onnx", str(exported.parent), str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert existing.read_bytes() == b"keep"
    assert main(["convert", "--to", "onnx", "--quantize", "dynamic", str(exported.parent),
                 str(tmp_path / "x.onnx")]) == 2
    assert main(["convert", "--to", "tflite", str(tmp_path), str(tmp_path / "x.tflite")]) == 2
    assert "no exported model" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


TFJS_PREDICT = REPO / "examples" / "tfjs_predict.cjs"
NODE_MODULES = REPO / ".venv-tfjs" / "node" / "node_modules"


def _node_env():
    return dict(os.environ, NODE_PATH=os.pathsep.join(
        p for p in (str(NODE_MODULES), os.environ.get("NODE_PATH", "")) if p))


def _tfjs_requirements():
    """None when the TF.js check can run, else the reason it cannot."""
    if convert.tfjs_python() is None:
        return "TF.js converter environment absent (run `make tfjs-env`)"
    node = shutil.which("node")
    if node is None:
        return "Node.js is not installed"
    probe = subprocess.run([node, "-e", "require.resolve('@tensorflow/tfjs')"],
                           capture_output=True, text=True, env=_node_env())
    if probe.returncode != 0:
        return "@tensorflow/tfjs is not installed for Node.js (run `make tfjs-env`)"
    return None


TFJS_MISSING = _tfjs_requirements()


@pytest.mark.skipif(TFJS_MISSING is not None, reason=str(TFJS_MISSING))
def test_tfjs_graph_model_in_node(convertible, reference, tmp_path):
    out = convert.to_tfjs(convertible, tmp_path / "web_model")
    assert (out / "model.json").exists()
    x = random_us_batch(2, reference.image_size, seed=5)
    (tmp_path / "x.json").write_text(json.dumps({"shape": list(x.shape), "data": x.ravel().tolist()}))
    proc = subprocess.run(
        ["node", str(TFJS_PREDICT), str(out / "model.json"), str(tmp_path / "x.json"),
         str(tmp_path / "y.json")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=_node_env(),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    y = json.loads((tmp_path / "y.json").read_text())
    got = np.asarray(y["data"], np.float32).reshape(y["shape"])
    assert np.max(np.abs(got - reference(x))) <= PARITY
