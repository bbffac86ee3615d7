"""Convert an exported SavedModel (``serving_default`` signature) to TFLite, ONNX or TF.js.

- TFLite: ``tf.lite.TFLiteConverter.from_saved_model``; float32 or dynamic-range quantised
  (int8 weights, float activations). Run it with LiteRT (:class:`~usmr_tf.export.runtimes.TFLiteRunner`).
- ONNX: the ``tf2onnx`` converter run on the SavedModel in a subprocess; run with ONNX Runtime.
- TF.js: ``tensorflowjs`` 4.22 in a separate environment (``make tfjs-env`` runs
  examples/tfjs_env.sh), because it cannot be installed beside TF 2.21; see docs/export.md.

Only ``serving_default`` is converted: ``predict_png`` holds string/image-codec ops that the
mobile and browser runtimes do not have; those clients decode images themselves.
"""

import os
import pathlib
import subprocess
import sys

from usmr_tf.atomic import atomic_path, replace_dir, write_bytes_atomic
from usmr_tf.errors import ConfigError
from usmr_tf.export import metadata as meta

FORMATS = ("tflite", "onnx", "tfjs")
ONNX_OPSET = 17
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TFJS_ENV_VAR = "USMR_TFJS_PYTHON"
# Ops tf2onnx copies through unchanged when it cannot convert a function call.
TF_ONLY_OPS = {"StatefulPartitionedCall", "PartitionedCall"}


def xla_functions(model_path, version=None):
    """Names of the functions marked ``_XlaMustCompile`` in an exported SavedModel.

    Keras' TensorFlow backend runs a convolution as a nested ``jit_compile=True`` function
    when the input's channel dimension is unknown when traced (e.g. after a reshape with -1).
    TFLite, tf2onnx and the TF.js converter cannot convert such a function.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    _, _, version_dir = meta.resolve_model_dir(model_path, version)
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    return sorted(
        f.signature.name
        for graph in saved_model.meta_graphs
        for f in graph.graph_def.library.function
        if f.attr["_XlaMustCompile"].b
    )


def check_convertible(model_path, version=None):
    """Raise ``ConfigError`` (naming the cause) if the SavedModel holds XLA-only functions."""
    names = xla_functions(model_path, version)
    if names:
        raise ConfigError(
            f"{model_path}: the inference graph holds {len(names)} XLA-compiled function(s) "
            f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}) that TFLite, ONNX "
            "and TF.js cannot convert. Keras compiles a Conv2D with XLA when its input's channel "
            "dimension is unknown at trace time (e.g. a reshape to (b, h, w, -1) before a 1x1 "
            "conv): give that reshape a static channel count and export again."
        )


def _subprocess_env():
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def to_tflite(model_path, out_path, quantize=None, version=None):
    """SavedModel -> ``.tflite``. ``quantize``: None (float32) or ``"dynamic"`` (dynamic range)."""
    import tensorflow as tf

    if quantize not in (None, "dynamic"):
        raise ConfigError(f"quantize={quantize!r}: use None or 'dynamic'")
    _, _, version_dir = meta.resolve_model_dir(model_path, version)
    check_convertible(version_dir)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(version_dir), signature_keys=[meta.SERVING_SIGNATURE]
    )
    if quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        flatbuffer = converter.convert()
    except Exception as exc:  # ConverterError carries the whole MLIR dump: keep the summary
        raise ConfigError(f"{version_dir}: TFLite conversion failed: {_summary(exc)}") from None
    return write_bytes_atomic(out_path, flatbuffer)


def to_onnx(model_path, out_path, opset=ONNX_OPSET, version=None, timeout=600):
    """SavedModel -> ``.onnx`` with ``python -m tf2onnx.convert`` (inputs/outputs keep their names)."""
    _, _, version_dir = meta.resolve_model_dir(model_path, version)
    check_convertible(version_dir)
    with atomic_path(out_path) as tmp:
        cmd = [
            sys.executable, "-m", "tf2onnx.convert",
            "--saved-model", str(version_dir),
            "--tag", "serve",
            "--signature_def", meta.SERVING_SIGNATURE,
            "--opset", str(int(opset)),
            "--output", str(tmp),
        ]
        _run(cmd, "tf2onnx", timeout, tmp)
        _check_onnx(tmp)
    return pathlib.Path(out_path)


def _check_onnx(path):
    """tf2onnx can leave TF ops it could not convert in the graph: refuse such a model."""
    import onnx

    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ConfigError(f"tf2onnx produced an invalid ONNX model: {_summary(exc)}") from None
    leftovers = sorted({n.op_type for n in model.graph.node if n.op_type in TF_ONLY_OPS})
    if leftovers:
        raise ConfigError(f"tf2onnx left TensorFlow-only ops in the ONNX graph: {leftovers}")


TFJS_CONVERT = (
    "import sys\n"
    "from tensorflowjs.converters.tf_saved_model_conversion_v2 import convert_tf_saved_model\n"
    "convert_tf_saved_model(sys.argv[1], sys.argv[2], signature_def=sys.argv[3],\n"
    "                       saved_model_tags='serve')\n"
)


def tfjs_python():
    """Python of the TF.js environment ($USMR_TFJS_PYTHON, else .venv-tfjs/), or None."""
    candidate = os.environ.get(TFJS_ENV_VAR) or str(REPO_ROOT / ".venv-tfjs" / "bin" / "python")
    if not os.access(candidate, os.X_OK):
        return None
    probe = subprocess.run([candidate, "-c", "import importlib.util as u; "
                            "raise SystemExit(u.find_spec('tensorflowjs') is None)"],
                           capture_output=True, env=_subprocess_env())
    return candidate if probe.returncode == 0 else None


def to_tfjs(model_path, out_dir, version=None, timeout=600):
    """SavedModel -> TF.js graph model folder (``model.json`` + weight shards)."""
    python = tfjs_python()
    if python is None:
        raise ConfigError(
            "the TF.js converter environment is missing: run `make tfjs-env` (builds "
            f".venv-tfjs with tensorflowjs 4.22 installed --no-deps) or set ${TFJS_ENV_VAR} "
            "to a python that can import tensorflowjs"
        )
    _, _, version_dir = meta.resolve_model_dir(model_path, version)
    check_convertible(version_dir)
    def convert(path):
        _run([python, "-c", TFJS_CONVERT, str(version_dir), str(path), meta.SERVING_SIGNATURE],
             "tensorflowjs converter", timeout)

    return replace_dir(out_dir, convert)


def _summary(exc, max_lines=6):
    """The informative lines of a converter error (op names, 'Select ops'), not the IR dump."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    keep = [line for line in lines if "ops" in line.lower() and len(line) < 300]
    return "\n".join((keep or lines[:1])[:max_lines])


def _run(cmd, tool, timeout, cleanup=None):
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=_subprocess_env()
        )
    except subprocess.TimeoutExpired as exc:
        if cleanup is not None:
            pathlib.Path(cleanup).unlink(missing_ok=True)
        raise ConfigError(f"{tool} did not finish within {timeout} s") from exc
    if proc.returncode != 0:
        if cleanup is not None:
            pathlib.Path(cleanup).unlink(missing_ok=True)
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ConfigError(f"{tool} failed (exit {proc.returncode}):\n{tail}")


def convert(model_path, fmt, out_path, **kwargs):
    """Dispatch on ``fmt`` in :data:`FORMATS`."""
    if fmt == "tflite":
        return to_tflite(model_path, out_path, **kwargs)
    if fmt == "onnx":
        return to_onnx(model_path, out_path, **kwargs)
    if fmt == "tfjs":
        return to_tfjs(model_path, out_path, **kwargs)
    raise ConfigError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
