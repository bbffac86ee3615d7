"""The shipped head locator preset and its runner (``usmr locate``, ``usmr synthesize --align auto``).

A locator export is a TF Serving model folder (``saved_models/fetal_head_locator/<version>/``)
with ``usmr.json`` (format ``usmr-locator/1``: the input frame and the refusal thresholds, so
the thresholds travel with the weights) and ``MODEL_CARD.md``. Signatures:

- ``serving_default``: ``image`` float32 ``[B, H, W, 1]`` in [-1, 1] -> ``head_probability``;
- ``locate_image``: ``image`` float32 ``[h, w]`` grey levels 0-255 (any size) -> ``ellipse``
  float32 ``[7]`` (cx, cy, a, b, angle, score, visible) in image pixels;
- ``locate_png``: ``image_png_bytes`` string ``[B]`` -> ``ellipse`` ``[B, 7]``.
"""

import json
import pathlib

import numpy as np

from usmr_tf.errors import ConfigError

LOCATOR_PRESETS = {"fetal_head_locator": "HC18 fetal head locator (U-Net + ellipse fit)"}
DEFAULT_LOCATOR = "fetal_head_locator"
LOCATOR_FORMAT = "usmr-locator/1"


def locator_path(name=DEFAULT_LOCATOR):
    from usmr_tf.presets import preset_path

    return preset_path(name)


class LocatorRunner:
    """A locator export, loaded with TensorFlow: ``runner.locate(image) -> Location``."""

    def __init__(self, path, version=None):
        import tensorflow as tf

        from usmr_tf.export.metadata import list_versions

        self.model_dir = pathlib.Path(path)
        if self.model_dir.name.isdigit() and (self.model_dir / "saved_model.pb").exists():
            self.model_dir, version = self.model_dir.parent, int(self.model_dir.name)
        info_path = self.model_dir / "usmr.json"
        if not info_path.is_file():
            raise ConfigError(f"{self.model_dir}: not a locator export (no usmr.json)")
        self.info = json.loads(info_path.read_text())
        if self.info.get("format") != LOCATOR_FORMAT:
            raise ConfigError(f"{self.model_dir}: not a head locator export "
                              f"(format {self.info.get('format')!r}, expected {LOCATOR_FORMAT})")
        versions = list_versions(self.model_dir)
        if not versions:
            raise ConfigError(f"{self.model_dir}: no version folder")
        self.version = versions[-1] if version is None else int(version)
        if self.version not in versions:
            raise ConfigError(f"{self.model_dir}: no version {self.version} (has {versions})")
        self.loaded = tf.saved_model.load(str(self.model_dir / str(self.version)))
        self._locate = self.loaded.signatures["locate_image"]
        self.thresholds = dict(self.info["thresholds"])

    def locate_values(self, image):
        """float ``[7]`` for one grey ``[h, w]`` image (0-255)."""
        import tensorflow as tf

        out = self._locate(image=tf.constant(np.asarray(image, np.float32)))
        return np.asarray(out["ellipse"])

    def locate(self, image):
        from usmr_tf.models.head_locator.head_locator import location_from_values

        return location_from_values(self.locate_values(image), **self.thresholds)


def load_locator(preset=None, model=None, version=None):
    """The locator of ``--locator-model`` / ``--locator`` (default: the shipped preset)."""
    return LocatorRunner(model if model else locator_path(preset or DEFAULT_LOCATOR), version)
