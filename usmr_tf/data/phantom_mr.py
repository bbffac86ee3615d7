"""T2-weighted-like MR rendering of phantom label maps.

Per pixel, the magnitude signal is

    M = | bias(x, y) * blur(T2(label)) + n_re + i * n_im |

- T2: tissue intensity (fluid bright: CSF, ventricles, cavum; developing white
  matter grey; cortical plate, thalami and choroid plexus darker; skull and falx
  dark), jittered per image;
- blur: a small Gaussian partial-volume blur;
- bias: a smooth multiplicative field, exp(random quadratic in x) * exp(... in y);
- n_re, n_im: Gaussian noise, so the magnitude is Rician.

The signal is mapped to [-1, 1] and set to -1 outside the head (a masked,
skull-stripped-like background).
"""

import numpy as np
from scipy import ndimage

from usmr_tf.data.phantom_anatomy import LABELS, NUM_LABELS, image_grid, per_image_lookup

_T2 = np.zeros(NUM_LABELS, np.float32)
for _name, _value in (
    ("background", 0.0),
    ("skull", 0.06),
    ("csf", 0.92),
    ("cortex", 0.36),
    ("parenchyma", 0.62),
    ("ventricles", 0.95),
    ("thalami", 0.34),
    ("cavum_septi_pellucidi", 0.9),
    ("falx", 0.2),
    ("choroid_plexus", 0.3),
):
    _T2[LABELS[_name]] = _value
_PV_SIGMA = 0.6
_FULL_SCALE = 1.05  # signal mapped to +1


def sample_mr(rng, n):
    """Draws the contrast, bias-field and noise settings of `n` MR renderings."""
    return {
        "t2_jitter": rng.uniform(0.93, 1.07, (n, NUM_LABELS)).astype(np.float32),
        "bias": (0.15 * rng.standard_normal((n, 4))).astype(np.float32),
        "noise": rng.uniform(0.01, 0.035, n).astype(np.float32),
    }


def render_mr(labels, settings, rng):
    """MR images [c, H, W] float32 in [-1, 1] (-1 outside the head) of label maps [c, H, W]."""
    c, size = labels.shape[0], labels.shape[-1]
    signal = per_image_lookup(_T2[None, :] * settings["t2_jitter"], labels)
    signal = ndimage.gaussian_filter(signal, (0.0, _PV_SIGMA, _PV_SIGMA), truncate=3.0)

    x, y = image_grid(size)
    k = settings["bias"][:, :, None, None]
    signal *= np.exp(k[:, 0] * x + k[:, 1] * x * x)  # separable: [c, 1, W] x [c, H, 1]
    signal *= np.exp(k[:, 2] * y + k[:, 3] * y * y)

    sigma = settings["noise"][:, None, None]
    re = signal + sigma * rng.standard_normal(labels.shape, np.float32)
    im = sigma * rng.standard_normal(labels.shape, np.float32)
    magnitude = np.sqrt(re * re + im * im)
    magnitude *= 2.0 / _FULL_SCALE
    magnitude -= 1.0
    np.minimum(magnitude, 1.0, out=magnitude)
    return np.where(labels > 0, magnitude, np.float32(-1.0))
