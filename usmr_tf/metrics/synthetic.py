"""Synthetic test images: a head-like phantom and known smooth warps.

Used by the metric tests and to calibrate the deformation score (docs/metrics.md); they
are not the training phantoms of `usmr_tf.data`.
"""

import numpy as np
from scipy import ndimage


def _ellipse(yy, xx, cy, cx, ry, rx, angle=0.0):
    c, s = np.cos(angle), np.sin(angle)
    y, x = yy - cy, xx - cx
    u, v = c * x + s * y, -s * x + c * y
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def head_phantom(size=64, seed=0):
    """A `[size, size]` head-like image in `[-1, 1]`: skull ring, brain, ventricles, texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    cy, cx = 0.5 + rng.uniform(-0.04, 0.04, 2)
    ry, rx = rng.uniform(0.34, 0.42), rng.uniform(0.28, 0.36)
    angle = rng.uniform(-0.4, 0.4)
    image = np.full((size, size), -1.0)
    image[_ellipse(yy, xx, cy, cx, ry, rx, angle)] = 0.8  # skull / scalp
    image[_ellipse(yy, xx, cy, cx, ry - 0.04, rx - 0.04, angle)] = 0.1  # brain
    for _ in range(int(rng.integers(2, 5))):  # ventricles and other structures
        oy, ox = rng.uniform(-0.15, 0.15, 2)
        value = rng.uniform(-0.7, 0.6)  # drawn before the shape: fixes the seeded phantoms
        ry_v, rx_v = rng.uniform(0.03, 0.09, 2)
        image[_ellipse(yy, xx, cy + oy, cx + ox, ry_v, rx_v, rng.uniform(0, 3))] = value
    texture = ndimage.gaussian_filter(rng.normal(size=(size, size)), size / 32.0)
    inside = _ellipse(yy, xx, cy, cx, ry - 0.04, rx - 0.04, angle)
    image[inside] += 0.15 * texture[inside] / (texture.std() + 1e-8)
    image = ndimage.gaussian_filter(image, 0.6)
    return np.clip(image, -1.0, 1.0).astype(np.float32)


def smooth_displacement(size, amplitude, seed=0, modes=2):
    """Smooth random displacement `[2, size, size]` whose largest shift is `amplitude` px."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) * (2 * np.pi / size)
    field = np.zeros((2, size, size))
    for k in range(2):
        for fy in range(1, modes + 1):
            for fx in range(1, modes + 1):
                a, py, px = rng.normal(), *rng.uniform(0, 2 * np.pi, 2)
                field[k] += a * np.sin(fy * yy + py) * np.sin(fx * xx + px)
    peak = np.abs(field).max()
    return field * (amplitude / peak if peak > 0 else 0.0)


def warp(image, displacement, order=1):
    """Samples `image [H, W]` at `x + displacement(x)`; outside the image is background (-1)."""
    size_y, size_x = image.shape
    yy, xx = np.mgrid[0:size_y, 0:size_x].astype(np.float64)
    coords = np.stack([yy + displacement[0], xx + displacement[1]])
    return ndimage.map_coordinates(image, coords, order=order, mode="constant", cval=-1.0).astype(
        np.float32
    )
