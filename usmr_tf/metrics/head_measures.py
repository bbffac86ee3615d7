"""The HC18 challenge's measures of a fitted head ellipse (van den Heuvel et al. 2018).

Against the reference (annotation) ellipse and HC of an image with its pixel size in mm:

- **DSC**: Dice of the two filled ellipses, rasterised on the image's pixel grid;
- **DF**: HC difference (fitted - reference, mm); **ADF**: its absolute value;
- **HD**: symmetric Hausdorff distance between the two ellipse outlines (mm).

Ellipses are (cx, cy, a, b, angle) in image pixels (x = column, y = row; angle of the
major axis from +x towards +y). HC is the perimeter (Ramanujan's second approximation).
Research measurements, not clinical ones.
"""

import math

import numpy as np


def ellipse_perimeter(a, b):
    """Ramanujan's second approximation of an ellipse's perimeter (semi-axes a, b)."""
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def filled_ellipse(shape, ellipse):
    cx, cy, a, b, angle = ellipse
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64)
    dx, dy = cols - cx, rows - cy
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def outline(ellipse, n=1440, closed=False):
    """``[n, 2]`` (x, y) points on the ellipse; ``closed``: ``[n + 1, 2]``, back to the first
    point (a curve to draw)."""
    cx, cy, a, b, angle = ellipse
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    cos, sin = math.cos(angle), math.sin(angle)
    points = np.stack([cx + a * np.cos(t) * cos - b * np.sin(t) * sin,
                       cy + a * np.cos(t) * sin + b * np.sin(t) * cos], axis=1)
    return np.vstack([points, points[:1]]) if closed else points


def hausdorff(e1, e2, n=1440):
    """Symmetric Hausdorff distance between two ellipse outlines (pixels)."""
    p, q = outline(e1, n), outline(e2, n)
    d = np.sqrt(((p[:, None, :] - q[None, :, :]) ** 2).sum(-1))
    return float(max(d.min(axis=1).max(), d.min(axis=0).max()))


def dice(shape, e1, e2):
    m1, m2 = filled_ellipse(shape, e1), filled_ellipse(shape, e2)
    return float(2.0 * (m1 & m2).sum() / max(m1.sum() + m2.sum(), 1))


def hc18_measures(shape, fitted, reference, pixel_size, reference_hc=None):
    """dict(dsc, df_mm, adf_mm, hd_mm, hc_mm, reference_hc_mm) of one image.

    ``reference_hc`` (mm): HC18's published HC of the image (its CSV); default: the reference
    ellipse's perimeter.
    """
    hc = ellipse_perimeter(fitted[2], fitted[3]) * pixel_size
    ref_hc = reference_hc if reference_hc is not None else \
        ellipse_perimeter(reference[2], reference[3]) * pixel_size
    return {"dsc": dice(shape, fitted, reference), "df_mm": hc - ref_hc,
            "adf_mm": abs(hc - ref_hc), "hd_mm": hausdorff(fitted, reference) * pixel_size,
            "hc_mm": hc, "reference_hc_mm": ref_hc}
