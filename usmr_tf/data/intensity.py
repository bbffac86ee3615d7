"""Foreground detection and robust intensity normalisation to [-1, 1] (shared by MR and US)."""

import numpy as np

from usmr_tf.errors import DataError

DEFAULT_PERCENTILES = (1.0, 99.0)


def otsu_threshold(values, bins=256):
    """Otsu's threshold of an array of intensities (histogram based, fast on large arrays)."""
    values = np.asarray(values, dtype=np.float32).ravel()
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        return lo
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    hist = hist.astype(np.float64)
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight0 = np.cumsum(hist)
    weight1 = weight0[-1] - weight0
    sum0 = np.cumsum(hist * centres)
    mean0 = sum0 / np.maximum(weight0, 1e-12)
    mean1 = (sum0[-1] - sum0) / np.maximum(weight1, 1e-12)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(edges[1:][np.argmax(between[:-1])]) if bins > 1 else lo


def foreground_mask(data, mask=None):
    """Boolean foreground: `mask` when given, else voxels above Otsu's threshold."""
    if mask is not None:
        return np.asarray(mask, dtype=bool)
    return np.asarray(data) > otsu_threshold(data)


def normalize_intensity(data, foreground, percentiles=DEFAULT_PERCENTILES, path=None,
                        mask_background=True):
    """Maps the [p_lo, p_hi] percentiles of the foreground intensities to [-1, 1].

    Values are clipped to [-1, 1]; with `mask_background` every voxel outside
    `foreground` is set to -1 (background).

    Raises:
        DataError: when the foreground is empty or has no intensity spread.
    """
    data = np.asarray(data, dtype=np.float32)
    foreground = np.asarray(foreground, dtype=bool)
    values = data[foreground]
    if values.size == 0:
        raise DataError("no foreground voxels to normalise", path)
    lo, hi = np.percentile(values, percentiles)
    if not hi > lo:
        raise DataError(
            f"foreground intensities have no spread between percentiles {tuple(percentiles)} "
            f"(all about {float(lo):g})", path)
    out = (data - np.float32(lo)) * np.float32(2.0 / (hi - lo)) - np.float32(1.0)
    np.clip(out, -1.0, 1.0, out=out)
    if mask_background:
        out[~foreground] = -1.0
    return out
