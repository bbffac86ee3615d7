"""The serving clients against loopback servers (127.0.0.1) that misbehave on purpose (issue 12).

Each server answers from a script (one entry a request) and counts the requests, so every test
knows exactly how many attempts the client made: transient failures (connection refused or
dropped, timeouts, HTTP 429 / 502 / 503 / 504, gRPC UNAVAILABLE / DEADLINE_EXCEEDED /
RESOURCE_EXHAUSTED) are retried `retries` times, with backoff; the rest fail at once with the
server's message. Nothing here is TF Serving; the formats are those of its documentation
(`{"error": ...}` bodies, gRPC status codes).
"""

import concurrent.futures
import contextlib
import http.server
import json
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from usmr_tf.export import metadata as meta
from usmr_tf.serving import errors
from usmr_tf.serving.grpc_client import GrpcClient
from usmr_tf.serving.rest_client import RestClient

SHAPE = (2, 8, 8, 1)
BATCH = np.linspace(-1, 1, int(np.prod(SHAPE)), dtype=np.float32).reshape(SHAPE)
GOOD = {"predictions": (BATCH * 0.5).tolist()}
TF_SERVING_500 = {"error": "Internal: failed to run the model (out of memory)"}
TF_SERVING_503 = {"error": "Servable tiny is loading; try again"}


# ----------------------------------------------------------------------------- REST


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers request i with script[min(i, len - 1)]: (status, body bytes or JSON, delay s) or
    "drop" (close the connection without an answer)."""

    def do_POST(self):  # noqa: N802 - http.server's name
        server = self.server
        with server.lock:
            index = server.count
            server.count += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        step = server.script[min(index, len(server.script) - 1)]
        if step == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, body, delay = step
        if delay:
            time.sleep(delay)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    do_GET = do_POST

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def rest_server(*script):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.daemon_threads = True
    server.script, server.count, server.lock = list(script), 0, threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _client(url, **kwargs):
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("timeout", 5)
    return RestClient(url, "tiny", **kwargs)


def test_rest_retries_503_then_succeeds():
    with rest_server((503, TF_SERVING_503, 0), (503, TF_SERVING_503, 0), (200, GOOD, 0)) as (
            server, url):
        out = _client(url).predict(BATCH)
    assert server.count == 3
    np.testing.assert_array_equal(out, BATCH * 0.5)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_rest_gives_up_after_bounded_retries(status):
    with rest_server((status, TF_SERVING_503, 0)) as (server, url):
        started = time.monotonic()
        with pytest.raises(errors.ServerBusyError,
                           match=f"HTTP {status}.*is loading.*3 attempts"):
            _client(url, backoff=0.05).predict(BATCH)
        waited = time.monotonic() - started
    assert server.count == 3  # 1 + 2 retries, no more
    assert waited >= 0.05 + 0.1  # backoff 0.05, then 0.1


@pytest.mark.parametrize("status, body, error, words", [
    (500, TF_SERVING_500, errors.ServingError, "HTTP 500.*Internal: failed to run the model"),
    (400, {"error": "Input to reshape is a tensor with 12 values"}, errors.InvalidInputError,
     "HTTP 400.*reshape"),
    (404, {"error": "Servable not found for request: Latest(tiny)"}, errors.ModelNotFoundError,
     "HTTP 404.*Servable not found"),
    (500, b"<html>proxy error</html>", errors.ServingError, "HTTP 500.*non-JSON.*proxy"),
    (200, b"{\"predictions\": [[[", errors.BadResponseError, "not JSON"),
    (200, [1, 2, 3], errors.BadResponseError, "JSON list"),
    (200, {"outputs": []}, errors.BadResponseError, "no 'predictions' field"),
    (200, {"predictions": (BATCH[:1] * 0.5).tolist()}, errors.BadResponseError,
     r"shape \(1, 8, 8, 1\), expected \(2, 8, 8, 1\)"),
    (200, {"predictions": [["a", "b"]] * 2}, errors.BadResponseError, "not a numeric array"),
    (200, {"predictions": 3}, errors.BadResponseError, "no output"),
    (200, {"predictions": np.full(SHAPE, np.nan).tolist()}, errors.BadResponseError, "NaN"),
])
def test_rest_permanent_failures_are_not_retried(status, body, error, words):
    with rest_server((status, body, 0)) as (server, url):
        with pytest.raises(error, match=words):
            _client(url).predict(BATCH)
    assert server.count == 1


def test_rest_timeout_is_retried_and_bounded():
    with rest_server((200, GOOD, 1.0)) as (server, url):
        started = time.monotonic()
        with pytest.raises(errors.ServingTimeoutError, match="0.2 s.*3 attempts"):
            _client(url, timeout=0.2).predict(BATCH)
        assert time.monotonic() - started < 3
    assert server.count == 3


def test_rest_dropped_connection_is_retried():
    with rest_server("drop", (200, GOOD, 0)) as (server, url):
        out = _client(url).predict(BATCH)
    assert server.count == 2
    np.testing.assert_array_equal(out, BATCH * 0.5)


def test_rest_connection_refused_is_retried_with_backoff(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens
    pauses = []
    monkeypatch.setattr(time, "sleep", pauses.append)
    with pytest.raises(errors.ServerUnreachableError, match="cannot reach.*4 attempts"):
        _client(f"http://127.0.0.1:{port}", retries=3, backoff=0.25).predict(BATCH)
    assert pauses == [0.25, 0.5, 1.0]


def test_rest_no_retries_when_asked():
    with rest_server((503, TF_SERVING_503, 0)) as (server, url):
        with pytest.raises(errors.ServerBusyError, match="is loading"):
            _client(url, retries=0).predict(BATCH)
    assert server.count == 1


def test_rest_png_answer_faults():
    with rest_server((200, {"predictions": ["not b64 dicts"]}, 0)) as (server, url):
        with pytest.raises(errors.BadResponseError, match="b64"):
            _client(url).predict_png([b"\x89PNG fake"])
    with rest_server((200, {"predictions": [{"b64": "aGk="}] * 2}, 0)) as (server, url):
        with pytest.raises(errors.BadResponseError, match="2 images in the answer for 1"):
            _client(url).predict_png([b"\x89PNG fake"])


# ----------------------------------------------------------------------------- gRPC


class _ScriptedServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict answers request i with script[min(i, len - 1)]: a grpc.StatusCode to abort
    with, ("sleep", s) then a good answer, or a function request -> PredictResponse."""

    def __init__(self, script):
        self.script, self.count, self.lock = list(script), 0, threading.Lock()

    def Predict(self, request, context):  # noqa: N802 - gRPC's name
        with self.lock:
            index = self.count
            self.count += 1
        step = self.script[min(index, len(self.script) - 1)]
        if isinstance(step, grpc.StatusCode):
            context.abort(step, f"scripted {step.name}")
        if isinstance(step, tuple) and step[0] == "sleep":
            time.sleep(step[1])
            step = _good
        return step(request)


def _response(**outputs):
    response = predict_pb2.PredictResponse()
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
    return response


def _good(request):
    x = tf.make_ndarray(request.inputs[meta.US_IMAGE_KEY])
    return _response(mri_image=x * 0.5)


@contextlib.contextmanager
def grpc_server(*script):
    servicer = _ScriptedServicer(script)
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def _grpc(target, **kwargs):
    kwargs.setdefault("retries", 2)
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("timeout", 5)
    return GrpcClient(target, "tiny", **kwargs)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_grpc_transient_then_success(code):
    with grpc_server(code, code, _good) as (servicer, target):
        with _grpc(target) as client:
            out = client.predict(BATCH)
    assert servicer.count == 3
    np.testing.assert_array_equal(out, BATCH * 0.5)


def test_grpc_unavailable_gives_up_after_bounded_retries():
    with grpc_server(grpc.StatusCode.UNAVAILABLE) as (servicer, target):
        with _grpc(target) as client:
            with pytest.raises(errors.ServerUnreachableError,
                               match="scripted UNAVAILABLE.*3 attempts"):
                client.predict(BATCH)
    assert servicer.count == 3


def test_grpc_deadline_exceeded_is_retried_and_bounded():
    with grpc_server(("sleep", 1.0)) as (servicer, target):
        with _grpc(target, timeout=0.2) as client:
            started = time.monotonic()
            with pytest.raises(errors.ServingTimeoutError, match="0.2 s.*3 attempts"):
                client.predict(BATCH)
            assert time.monotonic() - started < 3
    assert servicer.count == 3


def test_grpc_slow_once_then_fine():
    with grpc_server(("sleep", 1.0), _good) as (servicer, target):
        with _grpc(target, timeout=0.3) as client:
            np.testing.assert_array_equal(client.predict(BATCH), BATCH * 0.5)
    assert servicer.count == 2


@pytest.mark.parametrize("step, error, words", [
    (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidInputError, "INVALID_ARGUMENT"),
    (grpc.StatusCode.NOT_FOUND, errors.ModelNotFoundError, "NOT_FOUND"),
    (grpc.StatusCode.INTERNAL, errors.ServingError, "INTERNAL: scripted"),
    (lambda r: _response(other=np.zeros(SHAPE, np.float32)), errors.BadResponseError,
     "not 'mri_image'"),
    (lambda r: _response(mri_image=np.zeros((1, 8, 8, 1), np.float32)), errors.BadResponseError,
     r"shape \(1, 8, 8, 1\)"),
    (lambda r: _response(mri_image=np.zeros(SHAPE, np.int32)), errors.BadResponseError,
     "int32, expected float32"),
    (lambda r: _response(mri_image=np.array([b"x", b"y"])), errors.BadResponseError,
     "expected float32"),
])
def test_grpc_permanent_failures_are_not_retried(step, error, words):
    with grpc_server(step) as (servicer, target):
        with _grpc(target) as client:
            with pytest.raises(error, match=words):
                client.predict(BATCH)
    assert servicer.count == 1


def test_grpc_connection_refused_is_retried(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pauses = []
    monkeypatch.setattr(time, "sleep", pauses.append)
    with _grpc(f"127.0.0.1:{port}", retries=2, backoff=0.1, timeout=5) as client:
        with pytest.raises(errors.ServerUnreachableError, match="cannot reach.*3 attempts"):
            client.predict(BATCH)
    assert pauses == [0.1, 0.2]
