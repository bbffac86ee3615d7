"""The fetal head locator (one model family, keras-hub style): find the skull ellipse in a raw
B-mode image so that ``usmr synthesize`` can align it as the synthesis model was trained.

- ``head_locator_backbone``: U-Net backbone.
- ``head_locator_image_converter``: any-size image <-> the locator's letterboxed frame, and the
  refinement pass' canonical frame (``HeadLocatorCanonicalConverter``).
- ``head_locator_preprocessor``: HC18 (image, filled ellipse) pairs, negatives, augmentation.
- ``head_locator``: the segmenter (``HeadLocator``), ``Location`` and the refusal rules.
- ``head_locator_ellipse``: ellipse fit + score from the probability map (NumPy and TF ops).
- ``head_locator_locate``: the passes (letterbox, zoom, refinement) in TF ops.
- ``head_locator_training``: ``usmr train`` of a ``task: locate`` recipe with ``model.fit``
  (``model.stage``: locate or refine).
- ``head_locator_export``: the locator SavedModel and the raw-PNG serving graph.
- ``head_locator_presets``: the shipped locator preset.

Research measurements only, not clinical ones.
"""

from usmr_tf.models.head_locator.head_locator import HeadLocator, Location  # noqa: F401
from usmr_tf.models.head_locator.head_locator_backbone import HeadLocatorBackbone  # noqa: F401
from usmr_tf.models.head_locator.head_locator_image_converter import (  # noqa: F401
    HeadLocatorCanonicalConverter,
    HeadLocatorImageConverter,
)
