"""Ground-truth metrics for phantoms (paired synth MR vs phantom MR): MAE, PSNR, SSIM.

Images follow the project convention (intensities in `[-1, 1]`), so the data range is 2.
Each function returns the mean over the batch; `*_per_image` variants return `[N]` arrays.
SSIM follows Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5) and only the
"valid" region, like `tf.image.ssim`.
"""

import numpy as np
from scipy import ndimage

from usmr_tf.metrics.checks import as_image_batch, check_same_shape

DATA_RANGE = 2.0  # images live in [-1, 1]
MAX_PSNR_DB = 100.0  # identical images: PSNR capped instead of +inf (keeps JSON finite)
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # radius int(3.5 * 1.5 + 0.5) = 5 -> 11x11 window
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _pair(prediction, target):
    prediction = as_image_batch(prediction, "prediction")
    target = as_image_batch(target, "target")
    check_same_shape(prediction, target, ("prediction", "target"))
    return prediction, target


def mae_per_image(prediction, target):
    prediction, target = _pair(prediction, target)
    return np.abs(prediction - target).mean(axis=(1, 2))


def psnr_per_image(prediction, target):
    prediction, target = _pair(prediction, target)
    mse = np.square(prediction - target).mean(axis=(1, 2))
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(DATA_RANGE**2 / mse)
    return np.minimum(psnr, MAX_PSNR_DB)


def ssim_per_image(prediction, target):
    prediction, target = _pair(prediction, target)
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(prediction.shape[1:]) <= 2 * radius:
        raise ValueError(f"SSIM needs images larger than {2 * radius + 1} px")

    def blur(x):
        return ndimage.gaussian_filter(x, SSIM_SIGMA, truncate=SSIM_TRUNCATE, axes=(1, 2))

    mu_x, mu_y = blur(prediction), blur(target)
    sxx = blur(prediction * prediction) - mu_x**2
    syy = blur(target * target) - mu_y**2
    sxy = blur(prediction * target) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    )
    valid = ssim_map[:, radius:-radius, radius:-radius]
    return valid.mean(axis=(1, 2))


def mae(prediction, target):
    return float(mae_per_image(prediction, target).mean())


def psnr(prediction, target):
    return float(psnr_per_image(prediction, target).mean())


def ssim(prediction, target):
    return float(ssim_per_image(prediction, target).mean())
