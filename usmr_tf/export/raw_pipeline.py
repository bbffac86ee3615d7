"""The raw-scan pipeline in TF ops: locate -> align -> synthesize -> un-align, one function each.

TF Serving alone (no usmr_tf, no NumPy/SciPy on the server) takes a raw B-mode PNG and answers
with the MR in the input's frame and the located ellipse: ``export_raw_pipeline`` writes one
SavedModel (``saved_models/<name>_raw/``) whose ``predict_raw_png`` signature composes

1. ``locate``: the head locator export's ``locate_image`` (``head_locator_locate.tf_locate``);
2. ``tf_align``: the TF version of ``usmr_tf.data.hc18.spatial_normalize`` (the synthesis
   preset's training preprocessing): crop, k x k block means (k = floor(1 / scale)), affine
   warp that centres the head, turns its major axis horizontal and scales it to
   ``head_fraction * size``, percentile (1st-99th, inside the head) normalisation, -1 outside;
3. ``synthesize``: the synthesis export's ``serving_default``;
4. ``tf_unalign``: the inverse warp into the input's frame, -1 outside the head (as
   ``usmr_tf.export.synthesis.mask_aligned_mr`` + ``unalign_mr``), then 8-bit PNG.

Refused images (``head_found`` false, by the locator export's thresholds) get an empty PNG
string. ``usmr synthesize --align auto`` runs the same locator and the NumPy/SciPy versions of
steps 2-4; docs/locator.md states the measured parity between the two.
"""

import tensorflow as tf

from usmr_tf.data.hc18 import MASK_MARGIN
from usmr_tf.data.square import BACKGROUND
from usmr_tf.models.head_locator.head_locator_image_converter import affine_warp as _warp

HEAD_FRACTION = 0.8
PERCENTILES = (1.0, 99.0)


def _percentile(values, q):
    """NumPy's default ('linear') percentile of a 1-D tensor."""
    ordered = tf.sort(values)
    n = tf.cast(tf.size(ordered), tf.float32)
    position = q / 100.0 * (n - 1.0)
    lo = tf.cast(tf.floor(position), tf.int32)
    hi = tf.minimum(lo + 1, tf.size(ordered) - 1)
    t = position - tf.floor(position)
    return tf.gather(ordered, lo) * (1.0 - t) + tf.gather(ordered, hi) * t


def alignment(ellipse, size, head_fraction=HEAD_FRACTION):
    """(matrix [2, 2], offset [2], scale) of ``spatial_normalize`` for ellipse (cx, cy, a, b, angle)."""
    cx, cy, a, angle = ellipse[0], ellipse[1], ellipse[2], ellipse[4]
    scale = head_fraction * size / 2.0 / a
    cos, sin = tf.cos(angle), tf.sin(angle)
    matrix = tf.stack([tf.stack([cos, sin]), tf.stack([-sin, cos])]) / scale
    centre = (size - 1) / 2.0
    offset = tf.stack([cy, cx]) - tf.linalg.matvec(matrix, tf.constant([centre, centre]))
    return matrix, offset, scale


def tf_align(image, ellipse, size, head_fraction=HEAD_FRACTION):
    """Grey ``[h, w]`` + ellipse -> aligned US ``[size, size, 1]`` in [-1, 1] (``spatial_normalize``)."""
    image = tf.cast(image, tf.float32)
    matrix, offset, scale = alignment(ellipse, size, head_fraction)
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    reach = tf.cast(tf.math.ceil(size / scale * 0.7072), tf.int32) + 2
    centre = tf.stack([ellipse[1], ellipse[0]])
    lo = tf.maximum(tf.cast(tf.floor(centre), tf.int32) - reach, 0)
    hi = tf.minimum(tf.cast(tf.math.ceil(centre), tf.int32) + reach + 1, tf.stack([h, w]))
    crop = image[lo[0]:hi[0], lo[1]:hi[1]]
    k = tf.maximum(1, tf.cast(1.0 / scale, tf.int32))
    ch, cw = (tf.shape(crop)[0] // k) * k, (tf.shape(crop)[1] // k) * k
    blocks = tf.image.resize(crop[:ch, :cw, None], tf.stack([ch // k, cw // k]), method="area")
    kf = tf.cast(k, tf.float32)
    warped = _warp(blocks[..., 0], matrix / kf,
                   (offset - tf.cast(lo, tf.float32) - (kf - 1.0) / 2.0) / kf, [size, size], 0.0)
    rr, cc = tf.meshgrid(tf.range(size, dtype=tf.float32), tf.range(size, dtype=tf.float32),
                         indexing="ij")
    rr, cc = rr - (size - 1) / 2.0, cc - (size - 1) / 2.0
    grow = 1.0 + MASK_MARGIN
    inside = ((cc / (ellipse[2] * scale * grow)) ** 2 + (rr / (ellipse[3] * scale * grow)) ** 2
              <= 1.0)
    values = tf.boolean_mask(warped, inside)
    lo_v, hi_v = _percentile(values, PERCENTILES[0]), _percentile(values, PERCENTILES[1])
    out = (warped - lo_v) * (2.0 / tf.maximum(hi_v - lo_v, 1e-6)) - 1.0
    out = tf.where(inside, tf.clip_by_value(out, -1.0, 1.0), BACKGROUND)
    return out[..., None]


def head_mask(rows, cols, ellipse, margin=MASK_MARGIN):
    """True inside the ellipse grown by ``margin`` (image rows / cols), as ``synthesis.head_mask``."""
    x, y = cols - ellipse[0], rows - ellipse[1]
    cos, sin = tf.cos(ellipse[4]), tf.sin(ellipse[4])
    u, v = x * cos + y * sin, -x * sin + y * cos
    grow = 1.0 + margin
    return (u / (ellipse[2] * grow)) ** 2 + (v / (ellipse[3] * grow)) ** 2 <= 1.0


def tf_unalign(mr, ellipse, height, width, head_fraction=HEAD_FRACTION):
    """Aligned MR ``[S, S, 1]`` -> ``[height, width]`` in the input frame, -1 outside the head."""
    size = mr.shape[0]
    matrix, offset, _ = alignment(ellipse, size, head_fraction)
    inverse = tf.linalg.inv(matrix)
    image = _warp(tf.cast(mr[..., 0], tf.float32), inverse,
                  -tf.linalg.matvec(inverse, offset), tf.stack([height, width]), BACKGROUND)
    rows, cols = tf.meshgrid(tf.range(height, dtype=tf.float32),
                             tf.range(width, dtype=tf.float32), indexing="ij")
    image = tf.where(head_mask(rows, cols, ellipse), image, BACKGROUND)
    return tf.clip_by_value(image, -1.0, 1.0)


def to_uint8(image):
    return tf.cast(tf.round(tf.clip_by_value((image + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def accepted(ellipse7, thresholds):
    """The locator's refusal rules (``head_locator.refusal_reason``) as a TF bool."""
    return ((ellipse7[5] >= thresholds["min_score"])
            & (2.0 * ellipse7[2] >= thresholds["min_major_px"])
            & (ellipse7[6] >= thresholds["min_visible"]))


class RawPipeline(tf.Module):
    """Locator export + synthesis export -> ``predict_raw_png`` (one graph, TF ops only)."""

    def __init__(self, locator_dir, synthesis_dir, thresholds, image_size):
        super().__init__()
        self.locator = tf.saved_model.load(str(locator_dir))
        self.synthesis = tf.saved_model.load(str(synthesis_dir))
        self.thresholds = dict(thresholds)
        self.image_size = int(image_size)

    def _one(self, encoded):
        grey = tf.io.decode_image(encoded, channels=1, dtype=tf.uint8, expand_animations=False)
        grey = tf.cast(grey[..., 0], tf.float32)
        ellipse = self.locator.signatures["locate_image"](image=grey)["ellipse"]
        found = accepted(ellipse, self.thresholds)

        def synthesize():
            us = tf_align(grey, ellipse, self.image_size)
            mr = self.synthesis.signatures["serving_default"](us_image=us[None])["mri_image"][0]
            mr_full = tf_unalign(mr, ellipse, tf.shape(grey)[0], tf.shape(grey)[1])
            return tf.io.encode_png(to_uint8(mr_full)[..., None])

        png = tf.cond(found, synthesize, lambda: tf.constant(b"", tf.string))
        return png, ellipse, found

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="us_png_bytes")])
    def predict_raw_png(self, us_png_bytes):
        png, ellipse, found = tf.map_fn(
            self._one, us_png_bytes,
            fn_output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([7], tf.float32),
                                 tf.TensorSpec([], tf.bool)))
        return {"mri_png_bytes": png, "ellipse": ellipse, "head_found": found}


def export_raw_pipeline(locator_dir, synthesis_dir, out_dir, name, thresholds, image_size,
                        version=None, overwrite=False, sources=None):
    """Writes ``<out_dir>/<name>/<version>/`` (TF Serving layout) and its ``usmr.json``."""
    import datetime
    import json

    from usmr_tf.atomic import write_text_atomic
    from usmr_tf.export.metadata import RESEARCH_NOTICE, list_versions
    from usmr_tf.export.savedmodel import write_version

    module = RawPipeline(locator_dir, synthesis_dir, thresholds, image_size)
    version_dir = write_version(out_dir, name, version, overwrite, lambda path: tf.saved_model.save(
        module, str(path), signatures={"predict_raw_png": module.predict_raw_png}))
    model_dir, version = version_dir.parent, int(version_dir.name)
    info_path = model_dir / "usmr.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info.update({
        "name": name, "format": "usmr-raw-pipeline/1", "notice": RESEARCH_NOTICE,
        "latest_version": max(list_versions(model_dir)), "image_size": int(image_size),
        "thresholds": dict(thresholds),
        "signatures": {"predict_raw_png": {
            "inputs": {"us_png_bytes": "string [batch]: raw B-mode PNG/JPEG bytes, any size"},
            "outputs": {"mri_png_bytes": "string [batch]: 8-bit grey PNG in the input's frame, "
                                         "masked to the head; empty when refused",
                        "ellipse": "float32 [batch, 7] cx, cy, a, b, angle, score, visible "
                                   "(image pixels)",
                        "head_found": "bool [batch]: false = refused (no output)"}}},
    })
    info.setdefault("versions", {})[str(version)] = {
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(sources or {})}
    write_text_atomic(info_path, json.dumps(info, indent=2) + "\n")
    return version_dir
