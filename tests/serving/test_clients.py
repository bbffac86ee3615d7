"""gRPC and REST clients against the loopback TF Serving TEST DOUBLES of conftest.py."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from usmr_tf.export.runtimes import SavedModelRunner, random_us_batch
from usmr_tf.serving import (
    InvalidInputError,
    ModelNotFoundError,
    ServerUnreachableError,
    ServingTimeoutError,
)
from usmr_tf.serving.grpc_client import GrpcClient
from usmr_tf.serving.rest_client import RestClient

IMAGE_SIZE = 32  # conftest.py exports 32 x 32 models
MODEL_NAME = "tiny"


def _png(height, width, seed=0):
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def reference(model_base):
    """Direct (no server) SavedModel runners for versions 1 and 2."""
    return {v: SavedModelRunner(model_base / MODEL_NAME, version=v) for v in (1, 2)}


@pytest.fixture(scope="module")
def batch():
    return random_us_batch(3, IMAGE_SIZE, seed=7)


# ---------------------------------------------------------------- gRPC


def test_grpc_predict_latest_and_pinned_version(grpc_double, reference, batch):
    target, _ = grpc_double
    with GrpcClient(target, MODEL_NAME, timeout=30) as client:
        np.testing.assert_allclose(client.predict(batch), reference[2](batch), atol=1e-6)
    with GrpcClient(target, MODEL_NAME, version=1, timeout=30) as client:
        got = client.predict(batch)
    np.testing.assert_allclose(got, reference[1](batch), atol=1e-6)
    assert np.abs(reference[1](batch) - reference[2](batch)).max() > 1e-4  # versions differ


def test_grpc_predict_png(grpc_double, reference):
    target, _ = grpc_double
    images = [_png(IMAGE_SIZE, IMAGE_SIZE, 1), _png(45, 60, 2)]
    with GrpcClient(target, MODEL_NAME) as client:
        out = client.predict_png(images)
    assert out == reference[2].predict_png(images)
    assert Image.open(io.BytesIO(out[1])).size == (60, 45)


def test_grpc_errors(grpc_double, batch, closed_port):
    target, servicer = grpc_double
    with GrpcClient(target, "no_such_model") as client:
        with pytest.raises(ModelNotFoundError, match="no_such_model"):
            client.predict(batch)
    with GrpcClient(target, MODEL_NAME, version=9) as client:
        with pytest.raises(ModelNotFoundError, match="version 9"):
            client.predict(batch)
    with GrpcClient(target, MODEL_NAME) as client:  # server-side shape check
        with pytest.raises(InvalidInputError, match="INVALID_ARGUMENT"):
            client.predict(np.zeros((1, 16, 16, 1), np.float32))
    with GrpcClient(target, MODEL_NAME, image_size=IMAGE_SIZE) as client:  # client-side
        with pytest.raises(InvalidInputError, match="expects 32x32"):
            client.predict(np.zeros((1, 16, 16, 1), np.float32))
        with pytest.raises(InvalidInputError, match=r"\[batch, H, W, 1\]"):
            client.predict(np.zeros((1, 32, 32, 3), np.float32))
    with GrpcClient(f"127.0.0.1:{closed_port}", MODEL_NAME, timeout=5) as client:
        start = time.monotonic()
        with pytest.raises(ServerUnreachableError, match="cannot reach"):
            client.predict(batch)
        assert time.monotonic() - start < 6
    servicer.delay_s = 1.0
    try:
        with GrpcClient(target, MODEL_NAME, timeout=0.2) as client:
            with pytest.raises(ServingTimeoutError, match="0.2 s"):
                client.predict(batch)
    finally:
        servicer.delay_s = 0.0


# ---------------------------------------------------------------- REST


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_rest_predict_both_forms(rest_double, reference, batch, form):
    with RestClient(rest_double, MODEL_NAME) as client:
        got = client.predict(batch, form=form)
    np.testing.assert_allclose(got, reference[2](batch), atol=1e-5)


def test_rest_versions_status_and_png(rest_double, reference, batch):
    client = RestClient(rest_double, MODEL_NAME, version=1)
    assert client.model_url.endswith("/v1/models/tiny/versions/1")
    np.testing.assert_allclose(client.predict(batch), reference[1](batch), atol=1e-5)
    status = RestClient(rest_double, MODEL_NAME).status()
    assert [s["version"] for s in status["model_version_status"]] == ["1", "2"]
    images = [_png(IMAGE_SIZE, IMAGE_SIZE, 3), _png(50, 20, 4)]
    out = client.predict_png(images)
    assert out == reference[1].predict_png(images)
    assert Image.open(io.BytesIO(out[1])).size == (20, 50)


def test_rest_errors(rest_double, batch, closed_port, silent_server):
    with pytest.raises(ModelNotFoundError, match="404.*Servable not found"):
        RestClient(rest_double, "no_such_model").predict(batch)
    with pytest.raises(ModelNotFoundError, match="404"):
        RestClient(rest_double, MODEL_NAME, version=7).predict(batch)
    with pytest.raises(InvalidInputError, match="400.*incompatible"):
        RestClient(rest_double, MODEL_NAME).predict(np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(InvalidInputError, match="NaN"):
        RestClient(rest_double, MODEL_NAME).predict(np.full((1, 32, 32, 1), np.nan, np.float32))
    with pytest.raises(InvalidInputError, match="PNG"):
        RestClient(rest_double, MODEL_NAME).predict_png([])
    with pytest.raises(ServerUnreachableError, match="cannot reach"):
        RestClient(f"http://127.0.0.1:{closed_port}", MODEL_NAME, timeout=5).predict(batch)
    start = time.monotonic()
    with pytest.raises(ServingTimeoutError, match="0.3 s"):
        RestClient(f"http://127.0.0.1:{silent_server}", MODEL_NAME, timeout=0.3).predict(batch)
    assert time.monotonic() - start < 5
