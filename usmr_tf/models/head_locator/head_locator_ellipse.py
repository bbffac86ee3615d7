"""Skull ellipse from the locator's head probability map, in TensorFlow ops only.

One implementation serves ``usmr locate`` / ``usmr synthesize`` (eagerly, through the locator
SavedModel's ``locate_image`` signature) and the raw-PNG serving graph (TF Serving needs no
usmr_tf), so the CLI and the server find the same ellipse:

1. **Boundary points with sub-pixel precision**: wherever the probability crosses 0.5
   between two 4-neighbours, the crossing point by linear interpolation. Crossings next to
   the edge of the image's visible area (``valid`` mask) are dropped: they are the frame
   cutting a head, not the skull.
2. **Conic least squares**: ``A x^2 + B xy + C y^2 + D x + E y + F = 0`` with ``A + C = 1``
   (never 0 for an ellipse), a weighted 5x5 linear solve in centred, scaled coordinates.
3. **Robust start and refits**: the first ellipse comes from the moments of the probability
   around its densest region (the peak of a wide box blur), weighted down with the distance
   from it; only crossings within ``START_PX`` of that ellipse enter the first conic fit, and
   then points farther than ``inlier_px`` (Sampson distance) from the current ellipse get
   weight 0 and the conic is refitted (``refits`` times): stray blobs elsewhere in the frame
   do not pull the ellipse.
4. **Score**: Dice between the probability map and the fitted ellipse (filled), over the
   visible area: ~1 for a confident, elliptical head; low for scattered or non-elliptical
   responses; 0 when no ellipse can be fitted.

Coordinates are (x = column, y = row) in the map's pixels; the angle is the major axis'
direction from +x towards +y (radians, in [-pi/2, pi/2)), as in ``usmr_tf.data.hc18.Ellipse``.
"""

import math

import tensorflow as tf

EDGE_MARGIN = 2  # crossings within this many pixels of the visible area's edge are dropped
INLIER_PX = 3.0
START_PX = 10.0
BLUR = 31
REFITS = 3
MIN_POINTS = 12


# ----------------------------------------------------------------------------- TensorFlow


def _tf_interior(valid):
    inner = tf.cast(valid, tf.float32)[None, ..., None]
    for _ in range(EDGE_MARGIN):  # 4-neighbour erosion as a min-pool over a cross
        padded = tf.pad(inner, [[0, 0], [1, 1], [1, 1], [0, 0]])
        inner = tf.reduce_min(tf.stack([
            padded[:, 1:-1, 1:-1], padded[:, :-2, 1:-1], padded[:, 2:, 1:-1],
            padded[:, 1:-1, :-2], padded[:, 1:-1, 2:]]), axis=0)
    return inner[0, ..., 0] > 0.5


def _tf_crossings(prob, valid):
    p = tf.cast(prob, tf.float64)
    interior = _tf_interior(valid)
    h, w = tf.shape(p)[0], tf.shape(p)[1]
    xs, ys, ws = [], [], []
    for axis in (1, 0):
        if axis == 1:
            p0, p1, ok = p[:, :-1], p[:, 1:], interior[:, :-1] & interior[:, 1:]
            rows, cols = tf.meshgrid(tf.range(h), tf.range(w - 1), indexing="ij")
        else:
            p0, p1, ok = p[:-1, :], p[1:, :], interior[:-1, :] & interior[1:, :]
            rows, cols = tf.meshgrid(tf.range(h - 1), tf.range(w), indexing="ij")
        cross = ((p0 - 0.5) * (p1 - 0.5) < 0) & ok
        t = tf.where(cross, (0.5 - p0) / tf.where(cross, p1 - p0, tf.ones_like(p0)),
                     tf.zeros_like(p0))
        rows, cols = tf.cast(rows, tf.float64), tf.cast(cols, tf.float64)
        xs.append(tf.reshape(cols + (t if axis == 1 else 0.0), [-1]))
        ys.append(tf.reshape(rows + (t if axis == 0 else 0.0), [-1]))
        ws.append(tf.reshape(tf.cast(cross, tf.float64), [-1]))
    return tf.concat(xs, 0), tf.concat(ys, 0), tf.concat(ws, 0)


def _tf_solve_conic(x, y, w):
    """Conic [6] (pixel coords) and ok flag (enough points)."""
    total = tf.reduce_sum(w)
    safe = tf.maximum(total, 1.0)
    mx, my = tf.reduce_sum(w * x) / safe, tf.reduce_sum(w * y) / safe
    sc = tf.sqrt(tf.maximum(tf.reduce_sum(w * ((x - mx) ** 2 + (y - my) ** 2)) / safe, 1e-12))
    u, v = (x - mx) / sc, (y - my) / sc
    phi = tf.stack([u * v, v * v - u * u, u, v, tf.ones_like(u)], axis=1)
    lhs = tf.matmul(phi * w[:, None], phi, transpose_a=True) + 1e-9 * tf.eye(5, dtype=tf.float64)
    rhs = tf.matmul(phi * w[:, None], (-(u * u))[:, None], transpose_a=True)
    sol = tf.linalg.solve(lhs, rhs)[:, 0]
    b, c, d, e, f = sol[0], sol[1], sol[2], sol[3], sol[4]
    a = 1.0 - c
    s2 = sc * sc
    A, B, C = a / s2, b / s2, c / s2
    D = d / sc - 2 * A * mx - B * my
    E = e / sc - 2 * C * my - B * mx
    F = f - d * mx / sc - e * my / sc + a * mx * mx / s2 + b * mx * my / s2 + c * my * my / s2
    ok = total >= MIN_POINTS
    return tf.stack([A, B, C, D, E, F]), ok


def _tf_sampson(conic, x, y):
    A, B, C, D, E, F = tf.unstack(conic)
    value = A * x * x + B * x * y + C * y * y + D * x + E * y + F
    gx, gy = 2 * A * x + B * y + D, B * x + 2 * C * y + E
    return tf.abs(value) / tf.sqrt(gx * gx + gy * gy + 1e-12)


def _tf_start_conic(prob, valid):
    """Conic of the moment ellipse of the probability mass around its densest region."""
    p32 = tf.cast(prob, tf.float32) * tf.cast(valid, tf.float32)
    p = tf.cast(p32, tf.float64)
    # Box blur on a 4x coarser grid (cheap): its peak is the densest region of the mass.
    coarse = tf.nn.avg_pool2d(p32[None, ..., None], 4, 4, "SAME")
    for _ in range(2):
        coarse = tf.nn.avg_pool2d(coarse, BLUR // 4, 1, "SAME")
    shape, coarse_w = tf.shape(p), tf.shape(coarse)[2]
    peak = tf.argmax(tf.reshape(coarse, [-1]), output_type=tf.int32)
    py = tf.cast(peak // coarse_w, tf.float64) * 4.0 + 1.5
    px = tf.cast(peak % coarse_w, tf.float64) * 4.0 + 1.5
    rows, cols = tf.meshgrid(tf.range(shape[0]), tf.range(shape[1]), indexing="ij")
    rows, cols = tf.cast(rows, tf.float64), tf.cast(cols, tf.float64)
    radius = tf.sqrt(tf.reduce_sum(p) / math.pi + 1.0) * 1.5
    weight = p * tf.exp(-((cols - px) ** 2 + (rows - py) ** 2) / (2.0 * radius ** 2))
    total = tf.maximum(tf.reduce_sum(weight), 1e-9)
    cx, cy = tf.reduce_sum(weight * cols) / total, tf.reduce_sum(weight * rows) / total
    sxx = tf.reduce_sum(weight * (cols - cx) ** 2) / total
    syy = tf.reduce_sum(weight * (rows - cy) ** 2) / total
    sxy = tf.reduce_sum(weight * (cols - cx) * (rows - cy)) / total
    # Inverse covariance / 4 is the conic of the filled ellipse with these moments.
    det = tf.maximum(sxx * syy - sxy * sxy, 1e-9)
    A, B, C = syy / det / 4.0, -2.0 * sxy / det / 4.0, sxx / det / 4.0
    D, E = -2 * A * cx - B * cy, -B * cx - 2 * C * cy
    F = A * cx * cx + B * cx * cy + C * cy * cy - 1.0
    return tf.stack([A, B, C, D, E, F])


def tf_fit_ellipse_to_probability(prob, valid, *, inlier_px=INLIER_PX, refits=REFITS):
    """TF ops: ``prob [H, W]``, ``valid [H, W]`` bool -> float32 ``[6]``
    (cx, cy, a, b, angle, score); score 0 (and the other values 0) when no ellipse fits."""
    x, y, w = _tf_crossings(prob, valid)
    start = _tf_start_conic(prob, valid)
    w = w * tf.cast(_tf_sampson(start, x, y) <= START_PX, tf.float64)
    conic, ok = _tf_solve_conic(x, y, w)
    for _ in range(refits):
        w = w * tf.cast(_tf_sampson(conic, x, y) <= inlier_px, tf.float64)
        conic, ok_next = _tf_solve_conic(x, y, w)
        ok = ok & ok_next
    A, B, C, D, E, F = tf.unstack(conic)
    det = 4 * A * C - B * B
    safe_det = tf.where(det > 1e-18, det, tf.ones_like(det))
    cx = (B * E - 2 * C * D) / safe_det
    cy = (B * D - 2 * A * E) / safe_det
    k = -(A * cx * cx + B * cx * cy + C * cy * cy + D * cx + E * cy + F)
    safe_k = tf.where(tf.equal(k, 0.0), tf.ones_like(k), k)
    qa, qb, qc = A / safe_k, B / 2 / safe_k, C / safe_k
    mean = (qa + qc) / 2
    half = tf.sqrt(((qa - qc) / 2) ** 2 + qb * qb)
    lo, hi = mean - half, mean + half
    ok = ok & (det > 1e-18) & tf.not_equal(k, 0.0) & (lo > 0)
    lo_safe, hi_safe = tf.where(ok, lo, tf.ones_like(lo)), tf.where(ok, hi, tf.ones_like(hi))
    a_axis, b_axis = 1.0 / tf.sqrt(lo_safe), 1.0 / tf.sqrt(hi_safe)
    theta = 0.5 * tf.atan2(2 * qb, qa - qc) + math.pi / 2
    theta = tf.math.floormod(theta + math.pi / 2, math.pi) - math.pi / 2
    # Score: Dice of the map and the filled ellipse over the visible area.
    shape = tf.shape(prob)
    rows, cols = tf.meshgrid(tf.range(shape[0]), tf.range(shape[1]), indexing="ij")
    dx, dy = tf.cast(cols, tf.float64) - cx, tf.cast(rows, tf.float64) - cy
    cos, sin = tf.cos(theta), tf.sin(theta)
    uu, vv = dx * cos + dy * sin, -dx * sin + dy * cos
    vis = tf.cast(valid, tf.float64)
    filled = tf.cast((uu / a_axis) ** 2 + (vv / b_axis) ** 2 <= 1.0, tf.float64) * vis
    p = tf.cast(prob, tf.float64) * vis
    score = 2.0 * tf.reduce_sum(p * filled) / tf.maximum(tf.reduce_sum(p) + tf.reduce_sum(filled),
                                                         1e-9)
    values = tf.stack([cx, cy, a_axis, b_axis, theta, score])
    return tf.cast(tf.where(ok, values, tf.zeros_like(values)), tf.float32)


def fit_ellipse_to_probability(prob, valid=None):
    """Eager helper: ``prob [H, W]`` -> dict(cx, cy, a, b, angle, score) or None (no fit)."""
    prob = tf.convert_to_tensor(prob, tf.float32)
    valid = tf.ones(tf.shape(prob), tf.bool) if valid is None else tf.convert_to_tensor(valid)
    values = tf_fit_ellipse_to_probability(prob, valid).numpy()
    if values[5] <= 0:
        return None
    return dict(zip(("cx", "cy", "a", "b", "angle", "score"), (float(v) for v in values)))
