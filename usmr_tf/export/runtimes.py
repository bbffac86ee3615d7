"""Run an exported model: SavedModel (TF), TFLite (LiteRT) and ONNX Runtime behind one interface.

Every runner is called as ``runner(us_image)`` with float32 ``[B, S, S, 1]`` in [-1, 1] and
returns the synthesized MR as a NumPy array of the same shape. Used by ``usmr synthesize``,
the conversion parity checks, the examples and ``benchmarks/bench_infer.py``.
"""

import os
import pathlib

import numpy as np

from usmr_tf.errors import ConfigError, DataError
from usmr_tf.export import metadata as meta


def _as_batch(us_image, image_size):
    x = np.asarray(us_image, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:] != (image_size, image_size, 1):
        raise DataError(
            f"input shape {tuple(x.shape)}: expected [batch, {image_size}, {image_size}, 1]"
        )
    return x


def _first_line(exc, limit=300):
    """`Type: first line of the message`, shortened: enough to name the problem in one line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_savedmodel(version_dir):
    """`tf.saved_model.load` of an exported version folder, checked: returns `(loaded,
    serving_default function, image_size)`; any broken or foreign SavedModel (unparsable
    ``saved_model.pb``, missing or unreadable variables, no ``serving_default``, another
    input) is a `DataError` naming the folder and the problem."""
    import tensorflow as tf

    version_dir = pathlib.Path(version_dir)
    pb = version_dir / "saved_model.pb"
    if pb.is_dir() or not pb.exists():
        raise DataError("saved_model.pb is not a file", version_dir)
    try:
        loaded = tf.saved_model.load(str(version_dir))
    except Exception as exc:  # noqa: BLE001 - OSError, DecodeError, OpError, ValueError, ...
        raise DataError(f"not a loadable SavedModel ({_first_line(exc)})", version_dir) from None
    signatures = getattr(loaded, "signatures", {}) or {}
    if meta.SERVING_SIGNATURE not in signatures:
        raise DataError(f"SavedModel has no `{meta.SERVING_SIGNATURE}` signature (found: "
                        f"{', '.join(signatures) or 'none'}); export it with `usmr export`",
                        version_dir)
    serve = signatures[meta.SERVING_SIGNATURE]
    inputs = serve.structured_input_signature[1]
    spec = inputs.get(meta.US_IMAGE_KEY)
    shape = None if spec is None else spec.shape
    if (spec is None or spec.dtype != tf.float32 or shape.rank != 4 or shape[1] is None
            or shape[1] != shape[2] or shape[3] != 1):
        raise DataError(f"`{meta.SERVING_SIGNATURE}` takes {dict(inputs)}, expected "
                        f"`{meta.US_IMAGE_KEY}` float32 [batch, S, S, 1]", version_dir)
    return loaded, serve, int(shape[1])


class SavedModelRunner:
    """An exported ``saved_models/<name>[/<version>]`` loaded with ``tf.saved_model.load``.

    A missing, broken or foreign model raises `ConfigError` / `DataError` naming the file.
    """

    def __init__(self, path, version=None):
        self.model_dir, self.version, self.path = meta.resolve_model_dir(path, version)
        self.metadata = meta.read_metadata(self.model_dir)
        if not isinstance(self.metadata, dict):
            raise ConfigError(f"{self.model_dir / meta.METADATA_FILE}: model metadata must be a "
                              f"JSON object, not {type(self.metadata).__name__}")
        self._loaded, self._serve, self.image_size = load_savedmodel(self.path)
        try:
            self.slice_axis = int(self.metadata.get("slice_axis", 2))
        except (TypeError, ValueError):
            raise ConfigError(f"{self.model_dir / meta.METADATA_FILE}: slice_axis "
                              f"{self.metadata.get('slice_axis')!r} is not 0, 1 or 2") from None
        if self.slice_axis not in (0, 1, 2):
            raise ConfigError(f"{self.model_dir / meta.METADATA_FILE}: slice_axis "
                              f"{self.slice_axis} is not 0, 1 or 2")

    @property
    def signatures(self):
        return self._loaded.signatures

    @property
    def variables(self):
        """The variables the signatures use (each once), as restored by TensorFlow."""
        seen = {}
        for fn in self._loaded.signatures.values():
            for variable in fn.variables:
                seen.setdefault(id(variable), variable)
        return list(seen.values())

    def __call__(self, us_image):
        import tensorflow as tf

        x = _as_batch(us_image, self.image_size)
        return self._serve(**{meta.US_IMAGE_KEY: tf.constant(x)})[meta.MR_IMAGE_KEY].numpy()

    def predict_png(self, encoded_images):
        """List of PNG/JPEG bytes -> list of PNG bytes (the ``predict_png`` signature)."""
        import tensorflow as tf

        fn = self._loaded.signatures[meta.PNG_SIGNATURE]
        out = fn(**{meta.US_PNG_KEY: tf.constant(list(encoded_images), dtype=tf.string)})
        return [bytes(b) for b in out[meta.MR_PNG_KEY].numpy()]


class TFLiteRunner:
    """A ``.tflite`` file run with LiteRT (``ai_edge_litert.interpreter``)."""

    def __init__(self, path, num_threads=None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ConfigError("TFLite needs ai-edge-litert: pip install 'usmr-tf[convert]'") from exc
        self.path = str(path)
        if not pathlib.Path(path).is_file():
            raise DataError("no such file (expected a .tflite model)", path)
        try:
            # LiteRT's default is one thread; XNNPACK (its default float delegate) uses them all.
            threads = num_threads or os.cpu_count() or 1
            self._interpreter = Interpreter(model_path=self.path, num_threads=threads)
            self._runner = self._interpreter.get_signature_runner(meta.SERVING_SIGNATURE)
            detail = self._runner.get_input_details()[meta.US_IMAGE_KEY]
            self.image_size = int(detail["shape"][1])
        except Exception as exc:  # noqa: BLE001 - ValueError, RuntimeError, KeyError, ...
            raise DataError(f"not a usable TFLite model ({_first_line(exc)})", path) from None

    def __call__(self, us_image):
        x = _as_batch(us_image, self.image_size)
        return self._runner(**{meta.US_IMAGE_KEY: x})[meta.MR_IMAGE_KEY]


class OnnxRunner:
    """A ``.onnx`` file run with ONNX Runtime on the CPU."""

    def __init__(self, path, num_threads=None):
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ConfigError("ONNX needs onnxruntime: pip install 'usmr-tf[convert]'") from exc
        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.path = str(path)
        if not pathlib.Path(path).is_file():
            raise DataError("no such file (expected an .onnx model)", path)
        try:
            self._session = ort.InferenceSession(
                self.path, sess_options=options, providers=["CPUExecutionProvider"]
            )
            self.image_size = int(self._session.get_inputs()[0].shape[1])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's Fail / InvalidProtobuf, ...
            raise DataError(f"not a usable ONNX model ({_first_line(exc)})", path) from None

    def __call__(self, us_image):
        x = _as_batch(us_image, self.image_size)
        return self._session.run([meta.MR_IMAGE_KEY], {meta.US_IMAGE_KEY: x})[0]


def max_abs_difference(reference, candidate, us_image):
    """Max |reference(x) - candidate(x)| over a batch: the parity number the docs quote."""
    return float(np.max(np.abs(reference(us_image) - candidate(us_image))))


def random_us_batch(batch, image_size, seed=0):
    """A reproducible float32 ``[batch, S, S, 1]`` batch in [-1, 1] for parity checks."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(batch, image_size, image_size, 1)).astype(np.float32)
