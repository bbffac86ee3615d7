"""Locate the fetal head in one raw grey image, in TF ops: letterbox, segment, fit, zoom, refit, refine.

``tf_locate(predict, image, converter)`` is the whole locator step of the raw pipeline:

1. letterbox the image into the locator's frame, predict the head probability, fit the
   ellipse (``head_locator_ellipse``);
2. **zoom pass**: re-frame the image so the first ellipse's major axis spans ``ZOOM_FILL`` of
   the frame's width (centred on it), predict and fit again: the head is seen at about
   ``ZOOM_FILL * width / (2 a)`` map pixels per image pixel instead of the letterbox's scale,
   which sharpens the ellipse of small heads and of large frames;
3. **refinement pass** (when the export has a refiner): the image warped so that that ellipse
   is centred, its major axis horizontal and a fixed share of the frame's width
   (``HeadLocatorCanonicalConverter``); the refiner, trained on such frames, predicts the head
   there and the ellipse is fitted again and mapped back (kept only when confident and
   within ``REFINE_MAX_SHIFT`` / ``REFINE_MAX_SCALE`` of the zoom pass' ellipse). The score
   stays the zoom pass's (the no-head rule does not change with the refiner; the size and
   visibility rules read the refined ellipse);
4. map the ellipse back to image pixels and measure how much of its outline lies inside
   the frame.

It returns float32 ``[7]``: (cx, cy, a, b, angle, score, visible) in image pixels (x = column,
y = row, from the top-left corner; angle of the major axis from +x towards +y). ``score`` 0:
no ellipse at all. The refusal rules (``head_locator.refusal``) read these numbers.
"""

import math

import tensorflow as tf

from usmr_tf.models.head_locator.head_locator_ellipse import tf_fit_ellipse_to_probability

ZOOM_FILL = 0.6
# A refined ellipse replaces the zoom pass' only with a fit score of at least this, its centre
# within this share of the zoom semi-major axis and its major axis within this relative change.
REFINE_MIN_SCORE, REFINE_MAX_SHIFT, REFINE_MAX_SCALE = 0.5, 0.15, 0.2
MAX_ZOOM = 4.0  # zoom pass scale at most this many times the letterbox scale


def _frame(image, converter, scale, cx, cy):
    """``image`` [h, w, 1] resized by ``scale`` and placed so (cx, cy) sits at the frame's
    centre; pads with -1. Returns (frame [H, W, 1] in [-1, 1], geometry [5])."""
    H, W = converter.height, converter.width
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    nh = tf.maximum(tf.cast(tf.round(hf * scale), tf.int32), 1)
    nw = tf.maximum(tf.cast(tf.round(wf * scale), tf.int32), 1)
    s = tf.cast(nw, tf.float32) / wf
    resized = tf.image.resize(image, tf.stack([nh, nw]), method="bilinear", antialias=True)
    grey = resized / 127.5 - 1.0
    # Integer placement: map pixel j shows resized pixel j - left.
    left = tf.cast(tf.round((W - 1) / 2.0 - ((cx + 0.5) * s - 0.5)), tf.int32)
    top = tf.cast(tf.round((H - 1) / 2.0 - ((cy + 0.5) * s - 0.5)), tf.int32)
    # Crop the part of `resized` the frame sees, then pad it into place.
    r0, c0 = tf.maximum(-top, 0), tf.maximum(-left, 0)
    r1, c1 = tf.minimum(nh, H - top), tf.minimum(nw, W - left)
    r1, c1 = tf.maximum(r1, r0), tf.maximum(c1, c0)
    crop = grey[r0:r1, c0:c1]
    pad_top, pad_left = tf.maximum(top, 0), tf.maximum(left, 0)
    pad_top = tf.minimum(pad_top, H)
    pad_left = tf.minimum(pad_left, W)
    ch, cw = r1 - r0, c1 - c0
    frame = tf.pad(crop + 1.0, [[pad_top, tf.maximum(H - pad_top - ch, 0)],
                                [pad_left, tf.maximum(W - pad_left - cw, 0)], [0, 0]]) - 1.0
    frame = tf.ensure_shape(frame[:H, :W], [H, W, 1])
    geometry = tf.stack([s, tf.cast(top, tf.float32), tf.cast(left, tf.float32), hf, wf])
    return tf.clip_by_value(frame, -1.0, 1.0), geometry


def _to_image(fit, geometry):
    scale, top, left = geometry[0], geometry[1], geometry[2]
    cx = (fit[0] - left + 0.5) / scale - 0.5
    cy = (fit[1] - top + 0.5) / scale - 0.5
    return tf.stack([cx, cy, fit[2] / scale, fit[3] / scale, fit[4], fit[5]])


def tf_visible_fraction(ellipse, height, width, n=360):
    """Share of the ellipse's outline (``n`` points) inside an ``height x width`` frame."""
    t = tf.range(n, dtype=tf.float32) * (2.0 * math.pi / n)
    cx, cy, a, b, angle = ellipse[0], ellipse[1], ellipse[2], ellipse[3], ellipse[4]
    cos, sin = tf.cos(angle), tf.sin(angle)
    x = cx + a * tf.cos(t) * cos - b * tf.sin(t) * sin
    y = cy + a * tf.cos(t) * sin + b * tf.sin(t) * cos
    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    return tf.reduce_mean(tf.cast(inside, tf.float32))


def tf_refine(refine, image, ellipse, canonical):
    """One refinement pass: ``ellipse`` [>= 5] -> the refitted (cx, cy, a, b, angle), or the
    input's five values when nothing can be fitted in the refinement frame."""
    frame, geometry = canonical(image, ellipse[:5])
    prob = refine(frame[None])[0, ..., 0]
    valid = canonical.valid_mask(geometry, tf.shape(image)[0], tf.shape(image)[1])
    fit = tf_fit_ellipse_to_probability(prob, valid)
    refined = canonical.to_image(fit, geometry)
    a = ellipse[2]
    shift = tf.norm(refined[:2] - ellipse[:2])
    # Kept only inside the envelope the refiner was trained for (about 3x its jitter), with a
    # confident fit; otherwise the zoom pass' ellipse stands.
    plausible = ((fit[5] >= REFINE_MIN_SCORE) & (shift <= REFINE_MAX_SHIFT * a)
                 & (tf.abs(refined[2] / a - 1.0) <= REFINE_MAX_SCALE))
    return tf.cond(plausible, lambda: refined, lambda: ellipse[:5])


def tf_locate(predict, image, converter, zoom=True, refine=None, canonical=None):
    """``predict``: ``[1, H, W, 1]`` in [-1, 1] -> probabilities; ``image``: ``[h, w]`` or
    ``[h, w, 1]`` grey levels 0-255; ``refine``, ``canonical``: the refiner's predict function
    and its ``HeadLocatorCanonicalConverter`` (both or neither). Returns float32 ``[7]`` (see
    the module docstring)."""
    image = tf.cast(image, tf.float32)
    if image.shape.rank == 2:
        image = image[..., None]
    x, geometry = converter(image)
    prob = predict(x[None])[0, ..., 0]
    first = _to_image(tf_fit_ellipse_to_probability(prob, converter.valid_mask(geometry)),
                      geometry)

    def zoomed():
        letterbox_scale = geometry[0]
        scale = tf.clip_by_value(ZOOM_FILL * converter.width / (2.0 * first[2]),
                                 letterbox_scale, MAX_ZOOM * letterbox_scale)
        frame, geo = _frame(image, converter, scale, first[0], first[1])
        p = predict(frame[None])[0, ..., 0]
        fit = tf_fit_ellipse_to_probability(p, converter.valid_mask(geo))
        return tf.cond(fit[5] > 0, lambda: _to_image(fit, geo), lambda: first)

    ellipse = tf.cond(first[5] > 0, zoomed, lambda: first) if zoom else first
    if refine is not None:
        ellipse = tf.cond(ellipse[5] > 0, lambda: tf.concat(
            [tf_refine(refine, image, ellipse, canonical), ellipse[5:6]], axis=0),
            lambda: ellipse)
    h, w = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    visible = tf.where(ellipse[5] > 0, tf_visible_fraction(ellipse, h, w), 0.0)
    return tf.concat([ellipse, visible[None]], axis=0)
