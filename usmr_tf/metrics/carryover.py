"""How much of the US's own brightness a synthesized MR carries over, inside the head.

Fetal T2 MR is bright where the US is dark (the CSF of the ventricles and of the
extra-cerebral rim is anechoic in US) and dark where the US is bright (choroid plexus), so an
MR that keeps the US's brightness ranking is not MR-like there, whatever its texture.
`carryover(us, synth)` averages, over the heads (the US's head mask, holes filled, eroded by
`erode` px to leave the skull ring and the rim out):

- ``corr``: Pearson correlation of US and synthesized MR pixel by pixel (1 for the US passed
  through, -1 for its negative);
- ``bright_share``: share of the interior brighter than ``bright`` (intensities in [-1, 1]);
- ``bright_us_percentile``: where those bright MR pixels sit in the US's brightness ranking of
  the same head (0.5 = unrelated, 1 = the US's brightest pixels).

Heads under 50 pixels after erosion are skipped (``n`` counts the rest); a value with no head
to average over is None.

`bright_share(mr)` is the same share for real MR slices (their own masks). Images in the
project convention (``[N, H, W, 1]``, -1 = background). Research measurements.
`benchmarks/intensity_carryover.py` prints them for exports; docs/metrics.md has figures.
"""

import numpy as np
from scipy import ndimage

from usmr_tf.metrics.checks import as_image_batch


def interior(image, erode):
    """The head's inside of one ``[H, W]`` image: above the background (-1), holes filled,
    eroded by ``erode`` px."""
    mask = ndimage.binary_fill_holes(image > -0.9)
    return ndimage.binary_erosion(mask, iterations=erode) if erode else mask


def carryover(us, synth, erode=10, bright=0.3):
    """Mean `corr`, `bright_share`, `bright_us_percentile` over the heads (see the module)."""
    us, synth = as_image_batch(us, "us"), as_image_batch(synth, "synthesized MR")
    if us.shape != synth.shape:
        raise ValueError(f"{len(synth)} synthesized images of {synth.shape[1:]} for "
                         f"{len(us)} US images of {us.shape[1:]}")
    corr, share, pct = [], [], []
    for u_img, s_img in zip(us, synth):
        mask = interior(u_img, erode)
        if mask.sum() < 50:
            continue
        u, s = u_img[mask], s_img[mask]
        share.append(float((s > bright).mean()))
        if u.std() > 0 and s.std() > 0:
            corr.append(float(np.corrcoef(u, s)[0, 1]))
        if (s > bright).any():
            ranks = u.argsort().argsort() / max(len(u) - 1, 1)
            pct.append(float(ranks[s > bright].mean()))
    return {"corr": float(np.mean(corr)) if corr else None,
            "bright_share": float(np.mean(share)) if share else None,
            "bright_us_percentile": float(np.mean(pct)) if pct else None, "n": len(share)}


def bright_share(mr, erode=10, bright=0.3):
    """`bright_share` of real MR slices (their own head masks)."""
    shares = []
    for image in as_image_batch(mr, "real MR"):
        mask = interior(image, erode)
        if mask.sum() >= 50:
            shares.append(float((image[mask] > bright).mean()))
    return {"bright_share": float(np.mean(shares)) if shares else None, "n": len(shares)}
