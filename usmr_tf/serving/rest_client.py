"""REST client for TF Serving's predict API (port 8501).

    client = RestClient("http://localhost:8501", "usmr")
    mr = client.predict(us)                   # {"instances": ...} -> {"predictions": ...}
    mr = client.predict(us, form="inputs")    # {"inputs": ...}    -> {"outputs": ...}
    pngs = client.predict_png([png_bytes])    # {"instances": [{"b64": ...}]}

``POST /v1/models/<name>[/versions/<v>]:predict`` as documented in TF Serving's
``api_rest.md``. String outputs whose name ends in ``_bytes`` come back as ``{"b64": ...}``.
Failures raise a :class:`~usmr_tf.serving.errors.ServingError` subclass.
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
    """

    def __init__(self, base_url, model_name, version=None, timeout=30.0, image_size=None,
                 session=None):
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.version = version
        self.timeout = float(timeout)
        self.image_size = image_size
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
        try:
            response = self._session.request(
                method, url, data=None if body is None else json.dumps(body),
                headers={"Content-Type": "application/json"}, timeout=self.timeout,
            )
        except requests.exceptions.Timeout:
            raise errors.ServingTimeoutError(f"{url}: no answer within {self.timeout:g} s") from None
        except requests.exceptions.ConnectionError as exc:
            raise errors.ServerUnreachableError(
                f"cannot reach TF Serving at {self.base_url}: {type(exc).__name__}"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": response.text[:500]}
        if response.status_code != 200 or "error" in payload:
            message = payload.get("error", f"HTTP {response.status_code}")
            where = f"{url} (HTTP {response.status_code})"
            if response.status_code == 404:
                raise errors.ModelNotFoundError(f"{where}: {message}")
            if response.status_code == 400:
                raise errors.InvalidInputError(f"{where}: {message}")
            raise errors.ServingError(f"{where}: {message}")
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
        out = np.asarray(values, dtype=np.float32)
        if out.shape != x.shape:
            raise errors.ServingError(
                f"{self.model_url}: answer has shape {out.shape}, expected {x.shape}"
            )
        return out

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
            return [base64.b64decode(value["b64"]) for value in values]
        except (TypeError, KeyError) as exc:
            raise errors.ServingError(
                f"{self.model_url}: expected {{'b64': ...}} PNG values in the answer"
            ) from exc


def _single_output(payload, key, name, url):
    """The values of output ``name``: TF Serving drops the name when there is one output."""
    if key not in payload:
        raise errors.ServingError(f"{url}: answer has no {key!r} field: {sorted(payload)}")
    values = payload[key]
    if isinstance(values, dict):  # columnar, several outputs
        values = values.get(name)
    elif values and isinstance(values[0], dict) and name in values[0]:  # rows, several outputs
        values = [row[name] for row in values]
    if values is None:
        raise errors.ServingError(f"{url}: answer has no output {name!r}")
    return values
