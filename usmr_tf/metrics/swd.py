"""Sliced Wasserstein distance (SWD) between two image sets on Laplacian-pyramid patches.

A distribution distance that needs no pretrained network (Karras et al. 2018, "Progressive
growing of GANs", §5): each image is decomposed into a Laplacian pyramid; at every level,
random 7x7 patches from both sets are normalised with the pooled per-level mean/std and
compared with the sliced Wasserstein-1 distance over random unit directions. Lower is
closer; identical distributions give ~0 (sampling noise only).
"""

import numpy as np
from scipy import ndimage

from usmr_tf.metrics.checks import as_image_batch

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(images):
    out = ndimage.convolve1d(images, _BINOMIAL, axis=1, mode="reflect")
    return ndimage.convolve1d(out, _BINOMIAL, axis=2, mode="reflect")


def laplacian_pyramid(images, min_size=16):
    """Laplacian pyramid of `[N, H, W]`: finest band first, the low-pass residual last."""
    levels, current = [], images
    while min(current.shape[1:]) // 2 >= min_size:
        low = _blur(current)[:, ::2, ::2]
        up = np.zeros_like(current)
        up[:, ::2, ::2] = low
        up = _blur(up) * 4.0  # zero-insertion upsampling keeps 1/4 of the energy
        levels.append(current - up)
        current = low
    levels.append(current)
    return levels


def _patches(level, count, size, rng):
    n, h, w = level.shape
    idx = rng.integers(0, n, count)
    ys = rng.integers(0, h - size + 1, count)
    xs = rng.integers(0, w - size + 1, count)
    offsets = np.arange(size)
    rows = ys[:, None, None] + offsets[None, :, None]
    cols = xs[:, None, None] + offsets[None, None, :]
    return level[idx[:, None, None], rows, cols].reshape(count, size * size)


def sliced_wasserstein(a, b, directions=128, repeats=4, rng=None):
    """Sliced W1 distance between two `[count, dim]` point sets of equal count."""
    rng = np.random.default_rng(0) if rng is None else rng
    results = []
    for _ in range(repeats):
        dirs = rng.normal(size=(a.shape[1], directions))
        dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
        pa = np.sort(a @ dirs, axis=0)
        pb = np.sort(b @ dirs, axis=0)
        results.append(np.abs(pa - pb).mean())
    return float(np.mean(results))


def swd(images_a, images_b, patches_per_level=4096, patch_size=7, directions=128, repeats=4,
        seed=0, min_size=16):
    """SWD between two image sets `[N, H, W(, 1)]` (same H, W; N may differ).

    Returns a dict: `levels` (one value per pyramid level, finest first, x1e3 as in Karras
    et al.) and `mean` (their average).
    """
    a = as_image_batch(images_a, "images_a")
    b = as_image_batch(images_b, "images_b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"image sizes differ: {a.shape[1:]} vs {b.shape[1:]}")
    rng = np.random.default_rng(seed)
    values = []
    for level_a, level_b in zip(laplacian_pyramid(a, min_size), laplacian_pyramid(b, min_size)):
        size = min(patch_size, *level_a.shape[1:])
        pa = _patches(level_a, patches_per_level, size, rng)
        pb = _patches(level_b, patches_per_level, size, rng)
        pooled = np.concatenate([pa, pb])
        mean, std = pooled.mean(), pooled.std() + 1e-8
        values.append(1e3 * sliced_wasserstein((pa - mean) / std, (pb - mean) / std,
                                               directions, repeats, rng))
    return {"levels": values, "mean": float(np.mean(values))}
