"""gRPC client for a model exported with `usmr export` and served by TF Serving (port 8500).

    with GrpcClient("localhost:8500", "usmr") as client:
        mr = client.predict(us)                     # float32 [B, S, S, 1] in [-1, 1]
        pngs = client.predict_png([open("us.png", "rb").read()])

Uses tensorflow-serving-api's ``PredictionServiceStub.Predict``. Failures raise a
:class:`~usmr_tf.serving.errors.ServingError` subclass with the server's message;
UNAVAILABLE and DEADLINE_EXCEEDED (and RESOURCE_EXHAUSTED from an overloaded server) are
retried ``retries`` times with exponential backoff; an answer with a missing output, another
shape or dtype is a `BadResponseError`.
Synthesized images are research output, not for diagnosis.
"""

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from usmr_tf.export import metadata as meta
from usmr_tf.serving import errors
from usmr_tf.serving.inputs import check_encoded_images, check_us_batch
from usmr_tf.serving.rest_client import RAW_SIGNATURE, check_output, raw_result

MAX_MESSAGE_BYTES = 256 * 1024 * 1024

_STATUS_ERRORS = {
    grpc.StatusCode.UNAVAILABLE: errors.ServerUnreachableError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ServerBusyError,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.ServingTimeoutError,
    grpc.StatusCode.NOT_FOUND: errors.ModelNotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidInputError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.InvalidInputError,
}


class GrpcClient:
    """``PredictionService.Predict`` for the ``serving_default`` and ``predict_png`` signatures.

    Args:
        target: ``host:port`` of TF Serving's gRPC port.
        model_name: the served ``MODEL_NAME``.
        version: a model version (int) or None for the latest.
        timeout: seconds per request (gRPC deadline).
        image_size: if known, inputs are checked against it before sending.
        retries: how many times a transient failure is retried (0: never).
        backoff: seconds before the first retry, doubled for each next one.
    """

    def __init__(self, target, model_name, version=None, timeout=30.0, image_size=None,
                 retries=2, backoff=0.5):
        self.target = target
        self.model_name = model_name
        self.version = version
        self.timeout = float(timeout)
        self.image_size = image_size
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, signature, key, tensor_proto):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature
        if self.version is not None:
            request.model_spec.version.value = int(self.version)
        request.inputs[key].CopyFrom(tensor_proto)
        return request

    def _call(self, request):
        return errors.with_retries(lambda: self._call_once(request), self.retries, self.backoff,
                                   f"to {self.target}")

    def _call_once(self, request):
        try:
            return self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            cls = _STATUS_ERRORS.get(code, errors.ServingError)
            detail = exc.details() if hasattr(exc, "details") else str(exc)
            where = f"{self.target} model {self.model_name!r}"
            if self.version is not None:
                where += f" version {self.version}"
            if cls is errors.ServerUnreachableError:
                message = f"cannot reach TF Serving at {self.target}: {detail}"
            elif cls is errors.ServingTimeoutError:
                message = f"{where}: no answer within {self.timeout:g} s ({detail})"
            else:
                message = f"{where}: {code.name if code else 'error'}: {detail}"
            raise cls(message) from None

    def _output(self, response, key):
        where = f"{self.target} model {self.model_name!r}"
        if key not in response.outputs:
            raise errors.BadResponseError(
                f"{where}: response has outputs "
                f"{sorted(response.outputs)}, not {key!r} (was it exported with `usmr export`?)"
            )
        try:
            return tf.make_ndarray(response.outputs[key])
        except Exception as exc:  # noqa: BLE001 - a malformed TensorProto
            raise errors.BadResponseError(f"{where}: output {key!r} is not a valid tensor "
                                          f"({type(exc).__name__})") from None

    def predict(self, us_image):
        """float32 ``[B, H, W, 1]`` (or one ``[H, W, 1]``) in [-1, 1] -> synthesized MR, same shape."""
        x = check_us_batch(us_image, self.image_size)
        proto = tf.make_tensor_proto(x, dtype=tf.float32)
        response = self._call(self._request(meta.SERVING_SIGNATURE, meta.US_IMAGE_KEY, proto))
        out = self._output(response, meta.MR_IMAGE_KEY)
        if out.dtype.kind != "f":
            raise errors.BadResponseError(
                f"{self.target} model {self.model_name!r}: output {meta.MR_IMAGE_KEY!r} is "
                f"{out.dtype}, expected float32")
        return check_output(out, x.shape, f"{self.target} model {self.model_name!r}")

    def predict_png(self, encoded_images):
        """List of PNG/JPEG bytes -> list of synthesized MR PNG bytes (same height x width)."""
        images = check_encoded_images(encoded_images)
        proto = tf.make_tensor_proto(images, dtype=tf.string, shape=[len(images)])
        response = self._call(self._request(meta.PNG_SIGNATURE, meta.US_PNG_KEY, proto))
        out = self._output(response, meta.MR_PNG_KEY)
        if out.dtype.kind not in "OSa" or out.size != len(images):
            raise errors.BadResponseError(
                f"{self.target} model {self.model_name!r}: expected {len(images)} PNG strings, "
                f"got {out.dtype} {out.shape}")
        return [bytes(b) for b in out.ravel()]

    def predict_raw_png(self, encoded_images):
        """Raw B-mode PNG/JPEG bytes -> ``[RawResult]`` (see ``RestClient.predict_raw_png``)."""
        images = check_encoded_images(encoded_images)
        proto = tf.make_tensor_proto(images, dtype=tf.string, shape=[len(images)])
        response = self._call(self._request(RAW_SIGNATURE, meta.US_PNG_KEY, proto))
        pngs, ellipses = self._output(response, meta.MR_PNG_KEY), self._output(response, "ellipse")
        found = self._output(response, "head_found")
        if pngs.size != len(images) or ellipses.shape != (len(images), 7):
            raise errors.BadResponseError(
                f"{self.target} model {self.model_name!r}: expected {len(images)} answers, got "
                f"{pngs.shape} / {ellipses.shape}")
        return [raw_result(p, e, f) for p, e, f in zip(pngs.ravel(), ellipses, found.ravel())]
