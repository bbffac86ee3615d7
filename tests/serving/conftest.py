"""TEST DOUBLES of TF Serving for the client tests -- NOT TF Serving.

No TF Serving binary can be installed on these machines (it is not on PyPI or Debian), so
these fixtures start two small stand-in servers on 127.0.0.1 (free ports) that load the
exported SavedModel with ``tf.saved_model.load`` and answer in TF Serving's documented
formats:

- ``GrpcServingDouble``: a ``PredictionServiceServicer`` implementing ``Predict``
  (model_spec name / version / signature_name, TensorProto inputs and outputs, gRPC status
  codes NOT_FOUND / INVALID_ARGUMENT / FAILED_PRECONDITION as TF Serving uses them).
- ``RestServingDouble``: an ``http.server`` handler for ``POST /v1/models/<name>[/versions/<v>]:predict``
  with the row (``instances`` -> ``predictions``) and columnar (``inputs`` -> ``outputs``)
  forms, ``{"b64": ...}`` binary values (outputs named ``*_bytes`` are base64-encoded), and
  ``{"error": ...}`` bodies with HTTP 400 / 404; plus ``GET /v1/models/<name>`` status.

They exist only to exercise the clients in ``usmr_tf/serving``; users run the real
``tensorflow/serving`` image (docs/export.md, examples/serve_with_tf_serving.md).
"""

import base64
import concurrent.futures
import contextlib
import http.server
import json
import re
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from usmr_tf.export import export_savedmodel, list_versions
from usmr_tf.export.testing import build_full_model

IMAGE_SIZE = 32
MODEL_NAME = "tiny"


class ServingError(Exception):
    """A TF-Serving-style failure: (gRPC status code, HTTP status, message)."""

    def __init__(self, code, http_status, message):
        super().__init__(message)
        self.code, self.http_status, self.message = code, http_status, message


class LoadedModels:
    """``{name: {version: loaded SavedModel}}`` from ``<base>/<name>/<version>/`` folders."""

    def __init__(self, base_dir):
        self.models = {}
        for model_dir in sorted(p for p in base_dir.iterdir() if p.is_dir()):
            versions = list_versions(model_dir)
            if versions:
                self.models[model_dir.name] = {
                    v: tf.saved_model.load(str(model_dir / str(v))) for v in versions
                }

    def signature(self, name, version, signature_name):
        if name not in self.models:
            raise ServingError(grpc.StatusCode.NOT_FOUND, 404,
                               f"Servable not found for request: Latest({name})")
        versions = self.models[name]
        if version is None:
            version = max(versions)
        elif version not in versions:
            raise ServingError(grpc.StatusCode.NOT_FOUND, 404,
                               f"Servable not found for request: Specific({name}, {version})")
        signature_name = signature_name or "serving_default"
        if signature_name not in versions[version].signatures:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, 400,
                               f'Serving signature key "{signature_name}" not found.')
        return version, versions[version].signatures[signature_name]

    @staticmethod
    def run(fn, inputs):
        """Check inputs against the signature (as TF Serving does) and run it."""
        specs = fn.structured_input_signature[1]
        if set(inputs) != set(specs):
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT, 400,
                f"input tensor alias not found in signature: {sorted(set(inputs) - set(specs))}. "
                f"Inputs expected to be in the set {{{','.join(sorted(specs))}}}.")
        tensors = {}
        for key, value in inputs.items():
            spec = specs[key]
            try:
                tensor = tf.constant(value, dtype=spec.dtype)
            except (TypeError, ValueError) as exc:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, 400,
                                   f"{key}: cannot convert to {spec.dtype.name}: {exc}") from None
            if not spec.shape.is_compatible_with(tensor.shape):
                raise ServingError(
                    grpc.StatusCode.INVALID_ARGUMENT, 400,
                    f"{key}: shape {tensor.shape.as_list()} is incompatible with "
                    f"{spec.shape.as_list()}")
            tensors[key] = tensor
        try:
            return {k: v.numpy() for k, v in fn(**tensors).items()}
        except tf.errors.InvalidArgumentError as exc:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, 400, exc.message) from None


class GrpcServingDouble(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TEST DOUBLE of TF Serving's gRPC PredictionService (only ``Predict``)."""

    def __init__(self, models):
        self.models = models
        self.delay_s = 0.0  # tests set this to provoke client deadlines

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        if self.delay_s:
            time.sleep(self.delay_s)
        spec = request.model_spec
        try:
            version, fn = self.models.signature(
                spec.name, spec.version.value if spec.HasField("version") else None,
                spec.signature_name)
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            outputs = self.models.run(fn, inputs)
        except ServingError as exc:
            context.abort(exc.code, exc.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = spec.signature_name or "serving_default"
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


def _decode_b64(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    return value


def _encode_output(name, value):
    value = value.tolist() if isinstance(value, np.ndarray) else value
    if name.endswith("_bytes"):  # TF Serving: "_bytes" outputs are binary -> {"b64": ...}
        def enc(v):
            return [enc(x) for x in v] if isinstance(v, list) else {
                "b64": base64.b64encode(v).decode("ascii")}
        return enc(value)
    return value


class RestServingDouble(http.server.BaseHTTPRequestHandler):
    """TEST DOUBLE of TF Serving's REST API (predict + model status)."""

    models = None  # set on a subclass by the fixture
    PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(:predict)?$")

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        match = self.PATH.match(self.path)
        if not match or match.group(3):
            return self._reply(404, {"error": f"Malformed request: GET {self.path}"})
        name, version = match.group(1), match.group(2)
        versions = self.models.models.get(name, {})
        if not versions or (version and int(version) not in versions):
            return self._reply(404, {"error": f"Servable not found for request: Latest({name})"})
        shown = [int(version)] if version else sorted(versions)
        return self._reply(200, {"model_version_status": [
            {"version": str(v), "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}} for v in shown]})

    def do_POST(self):  # noqa: N802
        match = self.PATH.match(self.path)
        if not match or not match.group(3):
            return self._reply(404, {"error": f"Malformed request: POST {self.path}"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if ("instances" in body) == ("inputs" in body):
                raise ServingError(None, 400, "JSON Value: Missing 'instances' or 'inputs' "
                                              "key (exactly one is required)")
            version = int(match.group(2)) if match.group(2) else None
            _, fn = self.models.signature(match.group(1), version, body.get("signature_name"))
            names = sorted(fn.structured_input_signature[1])
            row = "instances" in body
            data = _decode_b64(body["instances" if row else "inputs"])
            if row and data and isinstance(data[0], dict):
                inputs = {k: [d[k] for d in data] for k in data[0]}
            elif isinstance(data, dict):
                inputs = data
            elif len(names) == 1:
                inputs = {names[0]: data}
            else:
                raise ServingError(None, 400, "several inputs: name them")
            outputs = self.models.run(fn, inputs)
        except ServingError as exc:
            return self._reply(exc.http_status, {"error": exc.message})
        except (ValueError, KeyError) as exc:
            return self._reply(400, {"error": f"JSON Parse error: {exc}"})
        encoded = {k: _encode_output(k, v) for k, v in outputs.items()}
        if row:
            if len(encoded) == 1:
                payload = {"predictions": next(iter(encoded.values()))}
            else:
                n = len(next(iter(encoded.values())))
                payload = {"predictions": [{k: v[i] for k, v in encoded.items()}
                                           for i in range(n)]}
        else:
            payload = {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}
        return self._reply(200, payload)


@pytest.fixture(scope="session")
def model_base(tmp_path_factory):
    """``<base>/tiny/1`` and ``<base>/tiny/2`` (different random weights)."""
    base = tmp_path_factory.mktemp("serving_models")
    export_savedmodel(build_full_model(IMAGE_SIZE, 4, 2, seed=1), base, MODEL_NAME)
    export_savedmodel(build_full_model(IMAGE_SIZE, 4, 2, seed=2), base, MODEL_NAME)
    return base


@pytest.fixture(scope="session")
def loaded_models(model_base):
    return LoadedModels(model_base)


@pytest.fixture(scope="session")
def grpc_double(loaded_models):
    """(target "127.0.0.1:<port>", servicer) of the gRPC TEST DOUBLE."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    servicer = GrpcServingDouble(loaded_models)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", servicer
    server.stop(grace=None)


@pytest.fixture(scope="session")
def rest_double(loaded_models):
    """Base URL ``http://127.0.0.1:<port>`` of the REST TEST DOUBLE."""
    handler = type("Handler", (RestServingDouble,), {"models": loaded_models})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server():
    """A TCP server on 127.0.0.1 that accepts connections and never answers (for timeouts)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    with contextlib.closing(sock):
        yield sock.getsockname()[1]
