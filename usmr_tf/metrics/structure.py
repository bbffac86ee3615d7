"""Structure-preservation score between an input US and its synthesized MR.

The paper's structural consistency (§2) compares EdgeNet edge maps; as a metric we
correlate EdgeNet Sobel edge magnitudes of the input US and of the synthesized MR inside the
head mask of the US:
`score = Pearson(|grad US|, |grad MR|)` over mask pixels, in [-1, 1] (higher = structure
better preserved). Edge *magnitudes* are used so that a contrast inversion between modalities
(bright in US, dark in MR) still counts as the same structure; a Gaussian pre-blur tames US
speckle.
"""

import numpy as np
from scipy import ndimage

from usmr_tf.layers.edge_net import EDGE_KERNELS
from usmr_tf.metrics.checks import as_image_batch, check_same_shape, foreground_mask

# The EdgeNet's fixed Sobel kernels (its Laplacian / diagonal channels are not needed for a
# gradient magnitude); scipy "mirror" padding equals the layer's "reflect" padding.
SOBEL_X = EDGE_KERNELS["sobel_x"].astype(np.float64)
SOBEL_Y = EDGE_KERNELS["sobel_y"].astype(np.float64)
DEFAULT_SIGMA = 1.0  # Gaussian pre-blur (px) before the edge filters


def edge_map(image, sigma=DEFAULT_SIGMA):
    """Edge magnitude of one `[H, W]` image (Gaussian blur, then EdgeNet's Sobel x/y)."""
    smooth = ndimage.gaussian_filter(image, sigma) if sigma > 0 else image
    gx = ndimage.correlate(smooth, SOBEL_X, mode="mirror")
    gy = ndimage.correlate(smooth, SOBEL_Y, mode="mirror")
    return np.hypot(gx, gy)


def _pearson(a, b):
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def structure_scores(us, synth, sigma=DEFAULT_SIGMA):
    """Per-pair scores `[N]` for `us` and `synth` `[N, H, W(, 1)]` (same shape)."""
    us = as_image_batch(us, "us")
    synth = as_image_batch(synth, "synth")
    check_same_shape(us, synth, ("us", "synth"))
    scores = []
    for u, s in zip(us, synth):
        mask = foreground_mask(u)
        if mask.sum() < 16:  # blank input: score the whole image
            mask = np.ones_like(mask)
        scores.append(_pearson(edge_map(u, sigma)[mask], edge_map(s, sigma)[mask]))
    return np.array(scores)


def structure_score(us, synth, sigma=DEFAULT_SIGMA):
    """Mean structure-preservation score in [-1, 1] over a batch of US / synth MR pairs."""
    return float(structure_scores(us, synth, sigma).mean())
