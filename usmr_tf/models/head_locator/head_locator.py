"""``HeadLocator``: a segmenter of the fetal head (skull ellipse, filled) in raw B-mode images.

keras-hub's segmenter pattern: a backbone (``HeadLocatorBackbone``, a U-Net), a 1x1 head
giving one logit per pixel, trained with ``model.fit`` on (image, mask) pairs from
``HeadLocatorPreprocessor`` with binary cross-entropy + soft Dice. On top of the pixel map,
``head_locator_locate.tf_locate`` letterboxes a raw image (``HeadLocatorImageConverter``),
predicts the head probability and fits the skull ellipse with a confidence score
(``head_locator_ellipse``), in the image's own pixel frame, as a ``Location``.

Refusal (``refusal_reason``): no fetal head when the score is under ``min_score`` (the
threshold is chosen from the score distribution, docs/locator.md), the head too small to
align (major axis under ``min_major_px`` image pixels), or too little of its outline inside
the frame to fit it (under ``min_visible`` of the fitted perimeter).

Outputs are research measurements, not clinical ones.
"""

import dataclasses

import keras
import tensorflow as tf

from usmr_tf.models.head_locator.head_locator_backbone import HeadLocatorBackbone
from usmr_tf.models.head_locator.head_locator_image_converter import HeadLocatorImageConverter

MIN_SCORE = 0.90
MIN_MAJOR_PX = 64.0
MIN_VISIBLE = 0.6


def dice_bce_loss(y_true, logits):
    """Binary cross-entropy + (1 - soft Dice) per image, from logits."""
    y_true = tf.cast(y_true, tf.float32)
    logits = tf.cast(logits, tf.float32)
    bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y_true, logits=logits),
                         axis=[1, 2, 3])
    prob = tf.sigmoid(logits)
    inter = tf.reduce_sum(prob * y_true, axis=[1, 2, 3])
    total = tf.reduce_sum(prob + y_true, axis=[1, 2, 3])
    dice = (2.0 * inter + 1.0) / (total + 1.0)
    return bce + (1.0 - dice)


def dice_metric(y_true, logits):
    """Hard Dice at 0.5 (1 when both masks are empty: a refused negative is right)."""
    y_true = tf.cast(y_true > 0.5, tf.float32)
    pred = tf.cast(logits > 0.0, tf.float32)
    inter = tf.reduce_sum(pred * y_true, axis=[1, 2, 3])
    total = tf.reduce_sum(pred + y_true, axis=[1, 2, 3])
    return tf.where(total > 0, 2.0 * inter / tf.maximum(total, 1.0), 1.0)


@keras.saving.register_keras_serializable(package="usmr_tf")
class HeadLocator(keras.Model):
    """Backbone + 1x1 logit head. ``call`` returns logits ``[B, H, W, 1]`` (float32)."""

    def __init__(self, backbone=None, height=224, width=320, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone if backbone is not None else HeadLocatorBackbone()
        self.head = keras.layers.Conv2D(1, 1, name="head_logits", dtype="float32")
        self.height, self.width = int(height), int(width)
        self.image_converter = HeadLocatorImageConverter(self.height, self.width)

    def build(self, input_shape):
        self.backbone.build(input_shape)
        self.head.build(self.backbone.compute_output_shape(input_shape))
        self.built = True

    def call(self, images, training=False):
        logits = tf.cast(self.head(self.backbone(images, training=training)), tf.float32)
        if self.backbone.output_stride > 1:  # back to the input's size (bilinear on logits)
            logits = tf.image.resize(logits, tf.shape(images)[1:3], method="bilinear")
        return logits

    def probability(self, images):
        return tf.sigmoid(self(images, training=False))

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "backbone": keras.saving.serialize_keras_object(self.backbone)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


@dataclasses.dataclass(frozen=True)
class Location:
    """A located head in image pixels (x = column to the right, y = row down, from the
    top-left corner): centre, semi-axes a >= b, angle of the major axis (radians, from +x
    towards +y), the confidence ``score`` in [0, 1] and ``refusal`` (None when accepted)."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float
    score: float
    visible: float
    refusal: str | None = None

    @property
    def found(self):
        return self.refusal is None

    @property
    def hc(self):
        """Ellipse perimeter (Ramanujan's second approximation), in pixels."""
        from usmr_tf.metrics.head_measures import ellipse_perimeter

        return ellipse_perimeter(self.a, self.b)

    @property
    def ellipse(self):
        """(cx, cy, a, b, angle), as ``usmr_tf.metrics.head_measures`` takes it."""
        return (self.cx, self.cy, self.a, self.b, self.angle)

    def to_hc18_ellipse(self):
        """The same ellipse as ``usmr_tf.data.hc18.Ellipse`` (centre as (row, col))."""
        from usmr_tf.data.hc18 import Ellipse

        return Ellipse(center=(self.cy, self.cx), a=self.a, b=self.b, angle=self.angle)


def refusal_reason(score, a, visible, *, min_score=MIN_SCORE, min_major_px=MIN_MAJOR_PX,
                   min_visible=MIN_VISIBLE):
    """Why a located ellipse is refused (None: accepted). The rules, in order:

    - score under ``min_score``: no fetal head (or not one the locator can trust);
    - major axis (``2 a``) under ``min_major_px`` image pixels: too small to align;
    - under ``min_visible`` of the fitted outline inside the frame: too much of the head is
      outside the image for its ellipse to be fitted from what is visible.
    """
    if not score > 0:
        return "no fetal head found (no ellipse in the locator's output)"
    if score < min_score:
        return f"no fetal head found (locator score {score:.3f} < threshold {min_score:.2f})"
    if 2 * a < min_major_px:
        return f"head too small to align (major axis {2 * a:.0f} px < {min_major_px:.0f} px)"
    if visible < min_visible:
        return (f"head mostly outside the frame (only {100 * visible:.0f}% of its outline "
                f"visible, need {100 * min_visible:.0f}%)")
    return None


def location_from_values(values, **thresholds):
    """``tf_locate``'s float ``[7]`` (cx, cy, a, b, angle, score, visible) -> ``Location``."""
    cx, cy, a, b, angle, score, visible = (float(v) for v in values)
    return Location(cx, cy, a, b, angle, score, visible,
                    refusal_reason(score, a, visible, **thresholds))
