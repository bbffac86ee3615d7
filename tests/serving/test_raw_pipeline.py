"""The raw-PNG serving path: locator + synthesis composed into one SavedModel
(`usmr export --raw-pipeline`), loaded with bare TensorFlow and served by the loopback
TF Serving TEST DOUBLES of conftest.py; the same MR as `usmr synthesize --align auto`."""

import concurrent.futures
import http.server
import io
import pathlib
import sys
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import prediction_service_pb2_grpc

from usmr_tf.cli.main import main
from usmr_tf.serving.grpc_client import GrpcClient
from usmr_tf.serving.rest_client import RestClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples/sample_data/us/hc18/training_set"
NAME = "raw"


def _doubles():
    """The TEST DOUBLE classes of this folder's conftest.py (already imported by pytest)."""
    return next(m for m in sys.modules.values()
                if str(getattr(m, "__file__", "")).endswith("serving/conftest.py"))


@pytest.fixture(scope="module")
def raw_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("raw_models")
    assert main(["export", "--raw-pipeline", "--locator", str(ROOT / "saved_models/fetal_head_locator"),
                 "--synthesis", str(ROOT / "saved_models/fetal_hc18_v2"), "--name", NAME,
                 "--out", str(base)]) == 0
    return base


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw_in")
    pngs = []
    for path in sorted(SAMPLE.glob("*HC.png"))[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
        pngs.append(folder / path.name)
    noise = folder / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400), np.uint8)).save(noise)
    return pngs + [noise]


def _grey(png_bytes):
    return np.asarray(Image.open(io.BytesIO(png_bytes)), np.float64)


def test_bare_tensorflow_load_matches_usmr_synthesize(raw_base, images, tmp_path):
    loaded = tf.saved_model.load(str(raw_base / NAME / "1"))
    out = loaded.signatures["predict_raw_png"](
        us_png_bytes=tf.constant([p.read_bytes() for p in images]))
    found = out["head_found"].numpy()
    assert found.tolist() == [True, True, False]
    assert out["mri_png_bytes"].numpy()[2] == b""
    for path, png, ellipse in zip(images[:2], out["mri_png_bytes"].numpy(),
                                  out["ellipse"].numpy()):
        cli_out = tmp_path / f"{path.stem}_mr.png"
        assert main(["synthesize", "--preset", "fetal_hc18_v2", str(path), str(cli_out),
                     "--quiet"]) == 0
        served, cli = _grey(png), np.asarray(Image.open(cli_out), np.float64)
        assert served.shape == cli.shape
        diff = np.abs(served - cli)
        # Parity: the same ellipse, alignment and model; the two un-align steps differ only
        # in how the head mask's edge is drawn (docs/locator.md).
        assert np.mean(diff) < 0.5 and np.mean(diff > 2) < 0.01
        assert ellipse[5] > 0.9


@pytest.fixture(scope="module")
def servers(raw_base):
    doubles = _doubles()
    models = doubles.LoadedModels(raw_base)
    grpc_server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        doubles.GrpcServingDouble(models), grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    handler = type("Handler", (doubles.RestServingDouble,), {"models": models})
    rest = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=rest.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{port}", f"http://127.0.0.1:{rest.server_address[1]}"
    grpc_server.stop(grace=None)
    rest.shutdown()
    rest.server_close()


def test_rest_and_grpc_clients_get_mr_and_ellipse(servers, raw_base, images):
    target, url = servers
    data = [p.read_bytes() for p in images]
    loaded = tf.saved_model.load(str(raw_base / NAME / "1"))
    direct = loaded.signatures["predict_raw_png"](us_png_bytes=tf.constant(data))
    with GrpcClient(target, NAME, timeout=120) as client:
        by_grpc = client.predict_raw_png(data)
    with RestClient(url, NAME, timeout=120) as client:
        by_rest = client.predict_raw_png(data)
    for results in (by_grpc, by_rest):
        assert [r.head_found for r in results] == [True, True, False]
        assert results[2].mr_png is None
        for r, png, ellipse in zip(results, direct["mri_png_bytes"].numpy(),
                                   direct["ellipse"].numpy()):
            np.testing.assert_allclose(r.ellipse, ellipse, rtol=1e-5, atol=1e-4)
            if r.head_found:
                assert r.mr_png == png
