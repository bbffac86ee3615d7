"""Whether a synthesized MR keeps the head of its US: the outline check (issue 18).

Realism scores (SWD, the realism test) do not see a head that the generator cut, bent or grew:
they compare sets, not pairs. This check compares each synthesized MR with its own US.

An aligned US (`hc18.spatial_normalize`, the raw-scan pipeline) is -1 outside its skull ellipse
grown by `hc18.MASK_MARGIN` (3 %); the MR it is trained against covers the intracranial space,
whose edge lies at `INTRACRANIAL` = 0.903 of the annotated (outer skull) ellipse (docs/data.md,
"Size": the skull echo's inner edge on the mean radial profile of the HC18 images). A synthesized
MR that keeps the head therefore fills the US's head region shrunk about its centre by
0.903 / 1.03, and nothing outside it.

`outline_scores(us, synth)` returns, per image, the Dice of the synthesized MR's head
(`checks.foreground_mask`: above the background, holes filled) with that region: 1 = the head
kept at the MR's size, as an ellipse. Real intracranial outlines are not quite ellipses (real MR
slices against their own moment ellipse: 0.93-0.98), so a real-looking head scores about
0.93-0.98; the US passed through scores 0.86 on data v3's test split (its skull ring and
margin lie outside); an output that cuts into the head, bends its outline or spills beyond it
scores less. A head drawn blank scores high too: read it beside the SWD. An image whose US has
no head gets NaN. `outline_measures` also splits the miss into MR drawn outside the region and
region left empty (spill, missing). The 0.903 is the major axis's (the minor's is 0.913:
docs/data.md); one scale is used for both. For inputs aligned another way (phantoms, volumes) pass their own `scale`
(synthesized head size / US mask size). Research measurements.
"""

import numpy as np
from scipy import ndimage

from usmr_tf.data.hc18 import MASK_MARGIN
from usmr_tf.errors import DataError
from usmr_tf.metrics.checks import as_image_batch, foreground_mask

INTRACRANIAL = 0.903  # skull's inner edge / annotated ellipse (docs/data.md, "Size")
DEFAULT_SCALE = INTRACRANIAL / (1.0 + MASK_MARGIN)  # the US mask is the ellipse x 1.03
US_HEAD_THRESHOLD = 1e-3  # an aligned US's head: every pixel above the background (-1) + this


def us_head(image):
    """The head of one aligned `[H, W]` US: every pixel above the background (-1), holes filled."""
    return foreground_mask(image, threshold=US_HEAD_THRESHOLD)


def shrink(mask, scale):
    """`mask` scaled by `scale` about its centroid (nearest neighbour), same frame."""
    rows, cols = np.nonzero(mask)
    cy, cx = rows.mean(), cols.mean()
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]].astype(np.float64)
    source = [(yy - cy) / scale + cy, (xx - cx) / scale + cx]
    return ndimage.map_coordinates(mask.astype(np.float64), source, order=0, cval=0.0) > 0.5


def dice(a, b):
    total = a.sum() + b.sum()
    return float(2.0 * (a & b).sum() / total) if total else float("nan")


def outline_measures(us, synth, scale=DEFAULT_SCALE):
    """Per image, in one pass: `{"dice", "spill", "missing"}`, each `[N]`: the Dice of each
    synthesized MR's head with its US's head shrunk by `scale` (NaN without a US head), and the
    MR drawn outside that region and the region left as background, as shares of its area
    (NaN where no region is left: a head too small to survive the shrink)."""
    us = as_image_batch(us, "us")
    synth = as_image_batch(synth, "synthesized MR")
    if us.shape != synth.shape:
        raise DataError(f"{synth.shape[0]} synthesized images of {synth.shape[1:]} for "
                        f"{us.shape[0]} US images of {us.shape[1:]}", "synthesized MR")
    if not 0.0 < scale <= 2.0:
        raise ValueError(f"scale must be in (0, 2], got {scale}")
    out = {name: np.full(len(us), np.nan) for name in ("dice", "spill", "missing")}
    for i, (u, x) in enumerate(zip(us, synth)):
        head = us_head(u)
        if not head.any():
            continue
        region, drawn = shrink(head, scale), foreground_mask(x)
        out["dice"][i] = dice(region, drawn)
        if region.any():
            out["spill"][i] = (drawn & ~region).sum() / region.sum()
            out["missing"][i] = (region & ~drawn).sum() / region.sum()
    return out


def outline_scores(us, synth, scale=DEFAULT_SCALE):
    """Per-image Dice `[N]` of each synthesized MR's head with its US's head shrunk by `scale`."""
    return outline_measures(us, synth, scale)["dice"]
