"""REST client for TF Serving's predict API (port 8501).

    client = RestClient("http://localhost:8501", "usmr")
    mr = client.predict(us)                   # {"instances": ...} -> {"predictions": ...}
    mr = client.predict(us, form="inputs")    # {"inputs": ...}    -> {"outputs": ...}
    pngs = client.predict_png([png_bytes])    # {"instances": [{"b64": ...}]}

``POST /v1/models/<name>[/versions/<v>]:predict`` as documented in TF Serving's
``api_rest.md``. String outputs whose name ends in ``_bytes`` come back as ``{"b64": ...}``.
Failures raise a :class:`~usmr_tf.serving.errors.ServingError` subclass: the server's own
``{"error": ...}`` message for HTTP 4xx / 5xx; `BadResponseError` for an answer that is not
the model's (not JSON, wrong output, shape or dtype). Transient failures (connection refused or
reset, timeout, HTTP 429 / 502 / 503 / 504) are retried ``retries`` times with exponential
backoff; the others are not.
Synthesized images are research output, not for diagnosis.
"""

import base64
import json

import numpy as np
import requests

from usmr_tf.export import metadata as meta
from usmr_tf.serving import errors
from usmr_tf.serving.inputs import check_encoded_images, check_us_batch

FORMS = ("instances", "inputs")


class RestClient:
    """Args:
        base_url: e.g. ``http://localhost:8501``.
        model_name: the served ``MODEL_NAME``.
        version: a model version (int) or None for the latest.
        timeout: seconds per request (connect and read).
        image_size: if known, inputs are checked against it before sending.
        retries: how many times a transient failure is retried (0: never).
        backoff: seconds before the first retry, doubled for each next one.
    """

    def __init__(self, base_url, model_name, version=None, timeout=30.0, image_size=None,
                 session=None, retries=2, backoff=0.5):
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.version = version
        self.timeout = float(timeout)
        self.image_size = image_size
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._session = session or requests.Session()

    @property
    def model_url(self):
        url = f"{self.base_url}/v1/models/{self.model_name}"
        if self.version is not None:
            url += f"/versions/{int(self.version)}"
        return url

    def close(self):
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, method, url, body=None):
        data = None if body is None else json.dumps(body)
        return errors.with_retries(lambda: self._send_once(method, url, data), self.retries,
                                   self.backoff, f"to {url}")

    def _send_once(self, method, url, data):
        try:
            response = self._session.request(
                method, url, data=data, headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except requests.exceptions.Timeout:
            raise errors.ServingTimeoutError(f"{url}: no answer within {self.timeout:g} s") from None
        except requests.exceptions.ConnectionError as exc:
            raise errors.ServerUnreachableError(
                f"cannot reach TF Serving at {self.base_url}: {_reason(exc)}"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise errors.ServingError(f"{url}: {_reason(exc)}") from None
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = None
        error = payload.get("error") if isinstance(payload, dict) else None
        if status != 200 or error is not None:
            message = error if error is not None else (
                f"non-JSON body {response.text[:200]!r}" if payload is None else f"HTTP {status}")
            where = f"{url} (HTTP {status})"
            if status == 404:
                raise errors.ModelNotFoundError(f"{where}: {message}")
            if status == 400:
                raise errors.InvalidInputError(f"{where}: {message}")
            if status in (429, 502, 503, 504):
                raise errors.ServerBusyError(f"{where}: {message}")
            raise errors.ServingError(f"{where}: {message}")
        if not isinstance(payload, dict):
            what = "not JSON" if payload is None else f"JSON {type(payload).__name__}"
            raise errors.BadResponseError(
                f"{url}: the answer is {what}, not a TF Serving JSON object: "
                f"{response.text[:200]!r}")
        return payload

    def status(self):
        """``GET /v1/models/<name>[/versions/<v>]``: the model version status JSON."""
        return self._send("GET", self.model_url)

    def _predict(self, body):
        return self._send("POST", f"{self.model_url}:predict", body)

    def predict(self, us_image, form="instances"):
        """float32 ``[B, H, W, 1]`` in [-1, 1] -> synthesized MR (``form``: instances or inputs)."""
        if form not in FORMS:
            raise ValueError(f"form={form!r}: use one of {FORMS}")
        x = check_us_batch(us_image, self.image_size)
        body = {"signature_name": meta.SERVING_SIGNATURE, form: x.tolist()}
        payload = self._predict(body)
        key = "predictions" if form == "instances" else "outputs"
        values = _single_output(payload, key, meta.MR_IMAGE_KEY, self.model_url)
        return check_output(values, x.shape, self.model_url)

    def predict_png(self, encoded_images):
        """List of PNG/JPEG bytes -> list of synthesized MR PNG bytes (``predict_png`` signature)."""
        images = check_encoded_images(encoded_images)
        body = {
            "signature_name": meta.PNG_SIGNATURE,
            "instances": [{"b64": base64.b64encode(image).decode("ascii")} for image in images],
        }
        values = _single_output(self._predict(body), "predictions", meta.MR_PNG_KEY,
                                self.model_url)
        try:
            pngs = [base64.b64decode(value["b64"], validate=True) for value in values]
        except (TypeError, KeyError, ValueError):
            raise errors.BadResponseError(
                f"{self.model_url}: expected {{'b64': ...}} PNG values in the answer"
            ) from None
        if len(pngs) != len(images):
            raise errors.BadResponseError(
                f"{self.model_url}: {len(pngs)} images in the answer for {len(images)} sent")
        return pngs

    def predict_raw_png(self, encoded_images):
        """Raw B-mode PNG/JPEG bytes -> ``[RawResult]`` (``predict_raw_png`` signature of a
        ``usmr export --raw-pipeline`` model): MR PNG in the input's frame (None when the
        image was refused), the located ellipse and ``head_found``."""
        images = check_encoded_images(encoded_images)
        body = {"signature_name": RAW_SIGNATURE,
                "instances": [{"b64": base64.b64encode(image).decode("ascii")}
                              for image in images]}
        payload = self._predict(body)
        rows = payload.get("predictions")
        try:
            results = [raw_result(base64.b64decode(r[meta.MR_PNG_KEY]["b64"]), r["ellipse"],
                                  r["head_found"]) for r in rows]
        except (TypeError, KeyError, ValueError):
            raise errors.BadResponseError(
                f"{self.model_url}: expected predictions with mri_png_bytes, ellipse and "
                "head_found (a `usmr export --raw-pipeline` model?)") from None
        if len(results) != len(images):
            raise errors.BadResponseError(
                f"{self.model_url}: {len(results)} answers for {len(images)} images sent")
        return results


def _reason(exc):
    """The innermost cause of a requests exception, in one line (refused, reset, ...)."""
    inner = exc
    while inner.__context__ is not None or getattr(inner, "reason", None) is not None:
        nxt = getattr(inner, "reason", None) or inner.__context__
        if not isinstance(nxt, BaseException) or nxt is inner:
            break
        inner = nxt
    text = str(inner).splitlines()[0] if str(inner) else ""
    return f"{type(inner).__name__}: {text[:200]}" if text else type(inner).__name__


RAW_SIGNATURE = "predict_raw_png"


class RawResult(tuple):
    """(mr_png: bytes or None when refused, ellipse: float [7], head_found: bool)."""

    __slots__ = ()
    mr_png = property(lambda self: self[0])
    ellipse = property(lambda self: self[1])
    head_found = property(lambda self: self[2])


def raw_result(png, ellipse, found):
    """One ``predict_raw_png`` answer; the ellipse is (cx, cy, a, b, angle, score, visible)."""
    found = bool(found)
    return RawResult((bytes(png) if found else None, [float(v) for v in ellipse], found))


def check_output(values, shape, where):
    """The model's MR output as float32 of `shape`, or `BadResponseError` saying what came."""
    try:
        out = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise errors.BadResponseError(
            f"{where}: the output is not a numeric array of shape {tuple(shape)}") from None
    if out.shape != tuple(shape):
        raise errors.BadResponseError(
            f"{where}: answer has shape {out.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(out)):
        raise errors.BadResponseError(f"{where}: the output has NaN or Inf values")
    return out


def _single_output(payload, key, name, url):
    """The values of output ``name``: TF Serving drops the name when there is one output."""
    if key not in payload:
        raise errors.BadResponseError(f"{url}: answer has no {key!r} field: {sorted(payload)}")
    values = payload[key]
    if isinstance(values, dict):  # columnar, several outputs
        values = values.get(name)
    elif (isinstance(values, list) and values and isinstance(values[0], dict)
          and name in values[0]):  # rows, several outputs
        values = [row.get(name) if isinstance(row, dict) else None for row in values]
    if values is None or not isinstance(values, list):
        raise errors.BadResponseError(f"{url}: answer has no output {name!r}")
    return values
