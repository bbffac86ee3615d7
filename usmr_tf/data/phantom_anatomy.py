"""Random fetal-head anatomy for the paired phantoms: parameters and label maps.

A phantom is an axial, trans-thalamic-like slice of a fetal head described by a
dict of per-slice parameters (numpy arrays with a leading batch axis). The
parameters are drawn by `sample_anatomy` and turned into an integer label map
[N, H, W] by `rasterise_labels`; the same label map is then rendered as US
(`phantom_ultrasound`) and as T2-like MR (`phantom_mr`), so both renderings
share their geometry exactly.

Coordinates: the image spans [-1, 1] in x (columns, left to right) and y (rows,
top to bottom). The head frame has `u` along the occipito-frontal axis (+u is
anterior) and `v` across it. Inner structures are placed in brain-normalised
coordinates `u' = u / A`, `v' = v / B` (A, B: brain semi-axes), so they scale
with the head. Paired structures use column 0 for the +v side and column 1 for
the -v side, each with its own jitter (mild left/right asymmetry).
"""

import numpy as np

# Label values of the anatomical label map.
LABELS = {
    "background": 0,
    "skull": 1,
    "csf": 2,  # extra-axial CSF / subarachnoid space, Sylvian and interhemispheric fissures
    "cortex": 3,  # cortical plate
    "parenchyma": 4,  # developing white matter / brain parenchyma
    "ventricles": 5,  # lateral ventricles (frontal horns, atria) and third ventricle
    "thalami": 6,
    "cavum_septi_pellucidi": 7,
    "falx": 8,  # midline falx cerebri
    "choroid_plexus": 9,
}
NUM_LABELS = len(LABELS)
MIN_SIZE = 32

_SKULL, _CSF, _CORTEX = LABELS["skull"], LABELS["csf"], LABELS["cortex"]
_PARENCHYMA, _VENTRICLES = LABELS["parenchyma"], LABELS["ventricles"]
_THALAMI, _CSP = LABELS["thalami"], LABELS["cavum_septi_pellucidi"]
_FALX, _CHOROID = LABELS["falx"], LABELS["choroid_plexus"]
_N_FOURIER = 4  # brain outline harmonics k = 2 .. 5


def check_count(n, name="n"):
    """Returns `n` as an int, or raises ValueError if it is not a positive integer."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def check_size(size):
    """Returns `size` as an int, or raises ValueError if it is not an int >= MIN_SIZE."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(
            f"size must be an integer >= {MIN_SIZE} (smaller slices cannot resolve the "
            f"skull and ventricles), got {size!r}"
        )
    return int(size)


def _uniform(rng, low, high, shape):
    return rng.uniform(low, high, shape).astype(np.float32)


def _paired(rng, n, low, high, jitter):
    """A [n, 2] parameter: one shared draw plus a per-side jitter (relative)."""
    base = _uniform(rng, low, high, (n, 1))
    return (base * (1.0 + jitter * rng.standard_normal((n, 2)))).astype(np.float32)


def sample_anatomy(rng, n):
    """Draws the anatomy parameters of `n` random phantoms (a dict of float32 arrays)."""
    p = {
        # head pose and size (absolute image units)
        "cx": _uniform(rng, -0.1, 0.1, n),
        "cy": _uniform(rng, -0.05, 0.12, n),
        "theta": _uniform(rng, -np.pi, np.pi, n),
        "head_a": _uniform(rng, 0.56, 0.74, n),
        "head_ratio": _uniform(rng, 0.74, 0.88, n),  # minor / major axis (cephalic index)
        "skull_t": _uniform(rng, 0.035, 0.06, n),
        "csf_t": _uniform(rng, 0.015, 0.04, n),
        "outline": (0.012 * rng.standard_normal((n, _N_FOURIER, 2))).astype(np.float32),
        "cortex_t": _uniform(rng, 0.03, 0.05, n),
        # inner structures (brain-normalised units)
        "thal_u": _paired(rng, n, -0.12, 0.0, 0.05),
        "thal_v": _paired(rng, n, 0.12, 0.16, 0.08),
        "thal_a": _paired(rng, n, 0.18, 0.24, 0.06),
        "thal_b": _paired(rng, n, 0.11, 0.15, 0.06),
        "thal_rot": _paired(rng, n, 0.3, 0.6, 0.1),
        "third_w": _uniform(rng, 0.012, 0.022, n),
        "csp_u": _uniform(rng, 0.22, 0.32, n),
        "csp_a": _uniform(rng, 0.07, 0.10, n),
        "csp_b": _uniform(rng, 0.04, 0.055, n),
        "fh_du": _paired(rng, n, 0.02, 0.08, 0.1),
        "fh_v": _paired(rng, n, 0.09, 0.12, 0.08),
        "fh_a": _paired(rng, n, 0.13, 0.18, 0.08),
        "fh_b": _paired(rng, n, 0.045, 0.065, 0.08),
        "fh_rot": _paired(rng, n, 0.3, 0.7, 0.1),
        "at_u": _paired(rng, n, -0.58, -0.45, 0.04),
        "at_v": _paired(rng, n, 0.22, 0.30, 0.06),
        "at_a": _paired(rng, n, 0.20, 0.28, 0.08),
        "at_b": _paired(rng, n, 0.08, 0.12, 0.08),
        "at_rot": _paired(rng, n, 0.2, 0.5, 0.1),
        "choroid_scale": _uniform(rng, 0.5, 0.75, n),
        "sylv_u": _paired(rng, n, -0.05, 0.10, 0.3),
        "sylv_r": _paired(rng, n, 0.12, 0.18, 0.1),
        "falx_w": _uniform(rng, 0.008, 0.014, n),
    }
    return p


def anatomy_along_z(params, index, n_slices, extent=1.0):
    """Per-slice parameters of one subject's slab of `n_slices` axial slices.

    `params` is a batch from `sample_anatomy`; `index` picks the subject. The head
    section shrinks away from the centre slice like an ellipsoid, the thalami and
    the cavum septi pellucidi appear only near the centre (the trans-thalamic
    plane) and the lateral ventricles lengthen superiorly, all smoothly in z.
    `extent` (0, 1] is how much of the head's height the slab spans.
    """
    zeta = np.linspace(-1.0, 1.0, n_slices, dtype=np.float32) * np.float32(extent)
    out = {k: np.repeat(v[index : index + 1], n_slices, axis=0).copy() for k, v in params.items()}

    def vanish(width):  # 1 at the centre slice, 0 beyond |zeta| > width, smooth
        return np.sqrt(np.clip(1.0 - (zeta / width) ** 2, 0.0, 1.0)).astype(np.float32)

    head = np.sqrt(1.0 - (0.55 * zeta) ** 2).astype(np.float32)
    out["head_a"] *= head
    out["cx"] += 0.02 * zeta
    for key in ("thal_a", "thal_b"):
        out[key] *= vanish(0.6)[:, None]
    for key in ("csp_a", "csp_b"):
        out[key] *= vanish(0.5)
    out["third_w"] *= vanish(0.6)
    sup = np.clip(zeta, 0.0, None)[:, None]
    out["fh_a"] *= 1.0 + 0.6 * sup
    out["fh_du"] -= 0.15 * sup
    out["at_a"] *= 1.0 + 0.3 * zeta[:, None]
    out["sylv_r"] *= vanish(0.9)[:, None]
    return out


def _ellipse(u, v, cu, cv, ea, eb, rot):
    """Mask of the points (u, v) inside a rotated ellipse; all parameters [c, 1, 1]."""
    du, dv = u - cu, v - cv
    c, s = np.cos(rot), np.sin(rot)
    p = (du * c + dv * s) / np.maximum(ea, 1e-6)
    q = (dv * c - du * s) / np.maximum(eb, 1e-6)
    return p * p + q * q < 1.0


def image_grid(size):
    """Pixel-centre coordinates x (columns) and y (rows) in [-1, 1], each [1, H, W]."""
    t = ((np.arange(size, dtype=np.float32) + 0.5) / size) * 2.0 - 1.0
    return t[None, None, :], t[None, :, None]


def per_image_lookup(table, labels):
    """Per-image table lookup: `table` [c, L], `labels` [c, H, W] -> `table[i, labels[i]]`."""
    offsets = (np.arange(labels.shape[0], dtype=np.intp) * table.shape[1])[:, None, None]
    return np.take(np.ascontiguousarray(table, np.float32), labels.astype(np.intp) + offsets)


def head_frame(params, x, y):
    """Head-frame coordinates (u, v) of image points x, y (broadcast over [c, ...])."""
    c = np.cos(params["theta"])
    s = np.sin(params["theta"])
    dx, dy = x - params["cx"], y - params["cy"]
    return dx * c + dy * s, dy * c - dx * s


def skull_normal(params, x, y):
    """Unit outward normal (nx, ny) of the skull ellipse at image points x, y."""
    u, v = head_frame(params, x, y)
    a = params["head_a"]
    b = a * params["head_ratio"]
    gu, gv = u / (a * a), v / (b * b)
    c, s = np.cos(params["theta"]), np.sin(params["theta"])
    nx, ny = gu * c - gv * s, gu * s + gv * c
    norm = np.maximum(np.hypot(nx, ny), 1e-6)
    return nx / norm, ny / norm


_INNER_KEYS = (
    "sylv_u", "sylv_r", "thal_u", "thal_v", "thal_a", "thal_b", "thal_rot", "third_w",
    "csp_u", "csp_a", "csp_b", "fh_du", "fh_v", "fh_a", "fh_b", "fh_rot",
    "at_u", "at_v", "at_a", "at_b", "at_rot", "choroid_scale", "falx_w",
)


def _paint_inner(lab, un, vn, p):
    """Paints the inner structures on candidate pixels.

    All arguments are 1D over the candidate pixels; `p` maps each key of
    `_INNER_KEYS` to its value per pixel (a pair of arrays for paired structures).
    """
    brain = (lab == _CORTEX) | (lab == _PARENCHYMA)
    for side, sign in ((0, 1.0), (1, -1.0)):
        sylv_r = p["sylv_r"][side]
        notch = _ellipse(un, vn, p["sylv_u"][side], 1.02 * sign, 0.5 * sylv_r, sylv_r, 0.0)
        lab[notch & brain] = _CSF

    for side, sign in ((0, 1.0), (1, -1.0)):
        lab[_ellipse(un, vn, p["thal_u"][side], sign * p["thal_v"][side],
                     p["thal_a"][side], p["thal_b"][side],
                     -sign * p["thal_rot"][side])] = _THALAMI
    thal_u = 0.5 * (p["thal_u"][0] + p["thal_u"][1])
    thal_a = 0.5 * (p["thal_a"][0] + p["thal_a"][1])
    third = (np.abs(vn) < p["third_w"]) & (np.abs(un - thal_u) < 0.85 * thal_a)
    lab[third] = _VENTRICLES

    for side, sign in ((0, 1.0), (1, -1.0)):
        fh_u = p["csp_u"] + p["fh_du"][side]
        lab[_ellipse(un, vn, fh_u, sign * p["fh_v"][side], p["fh_a"][side],
                     p["fh_b"][side], sign * p["fh_rot"][side])] = _VENTRICLES
        atrium = (un, vn, p["at_u"][side], sign * p["at_v"][side])
        rot = -sign * p["at_rot"][side]  # posterior ends diverge
        lab[_ellipse(*atrium, p["at_a"][side], p["at_b"][side], rot)] = _VENTRICLES
        cs = p["choroid_scale"]
        lab[_ellipse(*atrium, cs * p["at_a"][side], cs * p["at_b"][side], rot)] = _CHOROID

    lab[_ellipse(un, vn, p["csp_u"], 0.0, p["csp_a"], p["csp_b"], 0.0)] = _CSP

    # Interhemispheric fissure and falx, anterior to the CSP and posterior to the thalami.
    front = un > p["csp_u"] + p["csp_a"] + 0.04
    back = un < thal_u - thal_a - 0.05
    fissure = (front | back) & (lab != _SKULL) & (lab != _VENTRICLES) & (lab != _CHOROID)
    lab[fissure & (np.abs(vn) < 2.5 * p["falx_w"])] = _CSF
    lab[fissure & (np.abs(vn) < p["falx_w"])] = _FALX


def rasterise_labels(params, size):
    """Label maps [N, size, size] (uint8, values of `LABELS`) of a parameter batch."""
    size = check_size(size)
    p = {k: v[:, None, None] for k, v in params.items() if v.ndim == 1}
    x, y = image_grid(size)
    u, v = head_frame(p, x, y)

    a = p["head_a"]
    b = a * p["head_ratio"]
    t = p["skull_t"]
    labels = np.zeros(u.shape, np.uint8)
    labels[(u / a) ** 2 + (v / b) ** 2 < 1.0] = _SKULL
    inner = (u / (a - t)) ** 2 + (v / (b - t)) ** 2 < 1.0
    labels[inner] = _CSF

    # Brain outline: an ellipse with a few random low-order radial harmonics.
    # The harmonics move the outline by at most `bound`, so only a ring of pixels
    # needs the outline evaluated; inside the ring everything is parenchyma.
    big_a, big_b = a - t - p["csf_t"], b - t - p["csf_t"]
    un, vn = u / big_a, v / big_b
    r = np.sqrt(un * un + vn * vn)
    coef = params["outline"]
    bound = np.sqrt((coef * coef).sum(-1)).sum(-1)[:, None, None]
    labels[r < 1.0 - bound - p["cortex_t"]] = _PARENCHYMA
    ring = np.flatnonzero((r >= 1.0 - bound - p["cortex_t"]) & (r < 1.0 + bound) & inner)
    image = ring // (size * size)
    r_ring = np.take(r, ring)
    c1 = np.take(un, ring) / np.maximum(r_ring, 1e-6)
    s1 = np.take(vn, ring) / np.maximum(r_ring, 1e-6)
    ck, sk = c1, s1
    outline = np.ones_like(r_ring)
    for k in range(_N_FOURIER):
        ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1  # cos/sin of (k + 2) * phi
        outline += np.take(coef[:, k, 0], image) * ck + np.take(coef[:, k, 1], image) * sk
    lab = np.take(labels, ring)
    lab[r_ring < outline] = _CORTEX
    lab[r_ring < outline - np.take(params["cortex_t"], image)] = _PARENCHYMA
    labels.reshape(-1)[ring] = lab

    # Inner structures live in bounded regions of (u', v'): paint only those pixels.
    abs_v = np.abs(vn)
    near = ((un > -0.95) & (un < 0.75) & (abs_v < 0.65)) | (abs_v < 0.05)
    near |= (np.abs(un) < 0.35) & (abs_v > 0.75)  # Sylvian fissures
    flat = np.flatnonzero(near & inner)
    image = flat // (size * size)
    lab = labels.reshape(-1)[flat]
    # Thin structures at least ~1 pixel wide, so they never fall between pixel centres
    # (those of size 0, absent from a slice of `anatomy_along_z`, stay absent).
    min_u, min_v = 1.1 / size / big_a[:, 0, 0], 1.1 / size / big_b[:, 0, 0]
    widened = {}
    for key, low in (("falx_w", min_v), ("third_w", min_v), ("csp_b", min_v), ("csp_a", min_u)):
        widened[key] = np.where(params[key] > 0, np.maximum(params[key], low), 0.0)
    per_pixel = {}  # np.take of 1D arrays is much faster than fancy indexing of [c, 2]
    for key in _INNER_KEYS:
        val = widened.get(key, params[key])
        per_pixel[key] = (np.take(val, image) if val.ndim == 1
                          else tuple(np.take(val[:, i], image) for i in range(2)))
    _paint_inner(lab, np.take(un, flat), np.take(vn, flat), per_pixel)
    labels.reshape(-1)[flat] = lab
    return labels
