"""HC18 fetal head ultrasound: file naming, ellipse annotations and spatial normalisation.

HC18 (van den Heuvel et al. 2018) names images `<number>_HC.png`, `<number>_2HC.png`, ...
(several images of one exam share the number) with annotations
`<stem>_Annotation.png` marking the skull ellipse (outline or filled).

`spatial_normalize` is our stand-in for the paper's alignment step [10]: centre the head,
rotate the ellipse's major axis to horizontal, scale it to a canonical head size and
mask everything outside the head.

`radial_profile` and `skull_inner_edge` measure where the skull echo ends inside the
annotated ellipse (used to match the MR brain size to the HC18 heads, docs/data.md).
"""

import dataclasses
import math
import pathlib
import re

import numpy as np
from scipy import ndimage

from usmr_tf.data.images import image_to_slice, load_image
from usmr_tf.data.intensity import DEFAULT_PERCENTILES, normalize_intensity
from usmr_tf.data.square import BACKGROUND
from usmr_tf.errors import DataError

_NAME = re.compile(r"^(\d+)_(\d*)HC$")


def subject_id(path):
    """HC18 subject (exam) of an image: its number prefix, e.g. '010' for 010_2HC.png."""
    stem = pathlib.Path(path).name.split(".")[0]
    match = _NAME.match(stem.replace("_Annotation", ""))
    if not match:
        raise DataError("not an HC18 image name (expected <number>_[<k>]HC.png)", path)
    return match.group(1)


def annotation_path(path):
    path = pathlib.Path(path)
    return path.with_name(path.name.split(".")[0] + "_Annotation.png")


@dataclasses.dataclass(frozen=True)
class Ellipse:
    """Centre (row, col), semi-axes a >= b (pixels), angle of the major axis (radians,
    measured from the +col axis towards +row)."""

    center: tuple
    a: float
    b: float
    angle: float

    def to_dict(self):
        return {"center": [float(c) for c in self.center], "a": float(self.a),
                "b": float(self.b), "angle": float(self.angle)}


def fit_ellipse(rows, cols):
    """Direct least-squares ellipse fit (Halir & Flusser 1998) to boundary points."""
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    if rows.size < 6:
        raise ValueError(f"need at least 6 points to fit an ellipse, got {rows.size}")
    # Normalise coordinates for conditioning.
    mx, my, sc = cols.mean(), rows.mean(), max(cols.std(), rows.std(), 1e-9)
    x, y = (cols - mx) / sc, (rows - my) / sc
    d1 = np.stack([x * x, x * y, y * y], axis=1)
    d2 = np.stack([x, y, np.ones_like(x)], axis=1)
    s1, s2, s3 = d1.T @ d1, d1.T @ d2, d2.T @ d2
    t = -np.linalg.solve(s3, s2.T)
    m = s1 + s2 @ t
    m = np.stack([m[2] / 2.0, -m[1], m[0] / 2.0])
    _, vecs = np.linalg.eig(m)
    vecs = np.real(vecs)
    cond = 4.0 * vecs[0] * vecs[2] - vecs[1] ** 2
    if not (cond > 0).any():
        raise ValueError("points do not lie on an ellipse")
    a1 = vecs[:, np.argmax(cond)]
    A, B, C = a1
    D, E, F = t @ a1
    # Centre and axes in normalised coordinates.
    den = B * B - 4 * A * C
    x0 = (2 * C * D - B * E) / den
    y0 = (2 * A * E - B * D) / den
    quad = np.array([[A, B / 2], [B / 2, C]])
    k = -(A * x0 * x0 + B * x0 * y0 + C * y0 * y0 + D * x0 + E * y0 + F)
    evals, evecs = np.linalg.eigh(quad / k)
    if not (evals > 0).all():
        raise ValueError("points do not lie on an ellipse")
    semi = 1.0 / np.sqrt(evals)  # evals ascending -> semi-axes descending
    major = evecs[:, 0]
    angle = math.atan2(major[1], major[0])  # (x=col, y=row) direction
    angle = (angle + math.pi / 2) % math.pi - math.pi / 2
    return Ellipse(center=(my + y0 * sc, mx + x0 * sc), a=float(semi[0] * sc),
                   b=float(semi[1] * sc), angle=float(angle))


def _boundary(marks):
    """Pixels of `marks` with a 4-neighbour outside it: the edge of a filled ellipse, or a
    1-pixel outline itself. The image border does not count as outside."""
    padded = np.pad(marks, 1, mode="edge")
    interior = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return marks & ~interior


def load_annotation(path):
    """Fits the ellipse of an HC18 annotation PNG (outline or filled)."""
    marks = load_image(path) > 0
    rows, cols = np.nonzero(_boundary(marks))
    try:
        ellipse = fit_ellipse(rows, cols)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise DataError(f"cannot fit the head ellipse: {exc}", path) from None
    if not (ellipse.b > 2 and np.isfinite([ellipse.a, ellipse.b, *ellipse.center]).all()):
        raise DataError("the annotation's ellipse is degenerate", path)
    return ellipse


# The aligned US is masked to its ellipse grown by this share (the skull echo's outer edge).
MASK_MARGIN = 0.03


def spatial_normalize(image, ellipse, size=128, *, head_fraction=0.8, mask_margin=MASK_MARGIN,
                      percentiles=DEFAULT_PERCENTILES, path=None):
    """Centres, rotates and scales a head so its ellipse is canonical, masks outside it.

    The ellipse's major axis becomes horizontal and spans `head_fraction * size` pixels;
    pixels outside the ellipse (grown by `mask_margin`) are set to -1; intensities inside
    are normalised by their percentiles to [-1, 1].

    Returns (`[size, size, 1]` float32 in [-1, 1], transform dict). The transform maps
    output (row, col) to input (row, col): `in = matrix @ out + offset`.
    """
    image = np.asarray(image, dtype=np.float32)
    scale = head_fraction * size / 2.0 / ellipse.a  # output pixels per input pixel
    cos, sin = math.cos(ellipse.angle), math.sin(ellipse.angle)
    matrix = np.array([[cos, sin], [-sin, cos]]) / scale
    centre = (size - 1) / 2.0
    offset = np.asarray(ellipse.center) - matrix @ np.array([centre, centre])
    source_shape = image.shape
    # Only the part of the image the output frame can see.
    reach = int(math.ceil(size / scale * 0.7072)) + 2
    lo = np.maximum(np.floor(ellipse.center).astype(int) - reach, 0)
    hi = np.minimum(np.ceil(ellipse.center).astype(int) + reach + 1, source_shape)
    image = image[lo[0]:hi[0], lo[1]:hi[1]]
    # Anti-alias: k x k block means before downsampling by 1 / scale >= k.
    k = max(1, int(1.0 / scale))
    if k > 1:
        h, w = (image.shape[0] // k) * k, (image.shape[1] // k) * k
        image = image[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    warped = ndimage.affine_transform(image, matrix / k, offset=(offset - lo - (k - 1) / 2) / k,
                                      output_shape=(size, size), order=1, mode="constant",
                                      cval=0.0)
    rr, cc = np.mgrid[0:size, 0:size].astype(np.float32) - centre
    grow = 1.0 + mask_margin
    inside = (cc / (ellipse.a * scale * grow)) ** 2 + (rr / (ellipse.b * scale * grow)) ** 2 <= 1
    out = normalize_intensity(warped, inside, percentiles, path=path, mask_background=True)
    out[~inside] = BACKGROUND
    transform = {"kind": "hc18_aligned", "matrix": matrix.tolist(), "offset": offset.tolist(),
                 "source_shape": list(source_shape), "ellipse": ellipse.to_dict(),
                 "head_fraction": head_fraction}
    return out[..., None], transform


def load_hc18(path, size=128, *, align=True, head_fraction=0.8, percentiles=DEFAULT_PERCENTILES):
    """Reads one HC18 image (and, with `align`, its annotation) into a normalised slice."""
    image = load_image(path)
    if not align:
        return image_to_slice(image, size, percentiles=percentiles, path=path)
    ann = annotation_path(path)
    if not ann.exists():
        raise DataError(f"HC18 annotation {ann.name} is missing (needed for align)", path)
    ellipse = load_annotation(ann)
    return spatial_normalize(image, ellipse, size, head_fraction=head_fraction,
                             percentiles=percentiles, path=path)


def radial_profile(image, ellipse, rho, *, n_angles=180):
    """Intensities along rays from the ellipse centre, in units of the ellipse radius.

    Returns (samples `[len(rho), n_angles]` float64, NaN outside the image; `phi` radians
    from the major axis): sample (i, j) lies at `rho[i]` times the ellipse radius in
    direction `phi[j]`, so `rho = 1` is the annotated ellipse itself.
    """
    rho = np.asarray(rho, dtype=np.float64)
    phi = np.linspace(0.0, 2.0 * np.pi, n_angles, endpoint=False)
    u = ellipse.a * rho[:, None] * np.cos(phi)[None]  # along the major axis
    v = ellipse.b * rho[:, None] * np.sin(phi)[None]
    cos, sin = math.cos(ellipse.angle), math.sin(ellipse.angle)
    rows = ellipse.center[0] + u * sin + v * cos
    cols = ellipse.center[1] + u * cos - v * sin
    samples = ndimage.map_coordinates(np.asarray(image, dtype=np.float64), [rows, cols],
                                      order=1, mode="constant", cval=np.nan)
    return samples, phi


def skull_inner_edge(profile, rho, interior=(0.6, 0.8)):
    """`rho` where a mean radial profile, going inwards from its peak (the skull echo),
    first falls to half way between the peak and the mean level over `interior`."""
    profile = np.asarray(profile, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    peak = int(np.nanargmax(profile))
    inside = (rho >= interior[0]) & (rho <= interior[1])
    half = (profile[peak] + np.nanmean(profile[inside])) / 2.0
    below = np.flatnonzero(profile[:peak] < half)
    if len(below) == 0:
        raise ValueError("the profile does not fall below half its peak inside the skull")
    i = below[-1]  # linear interpolation between i (below half) and i + 1 (above)
    t = (half - profile[i]) / (profile[i + 1] - profile[i])
    return float(rho[i] + t * (rho[i + 1] - rho[i]))
