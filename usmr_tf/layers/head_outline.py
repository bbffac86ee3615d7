"""The head a synthesized MR should fill, from its aligned US; and a loss that holds it there.

NOT part of Jiao et al. 2019: the option `lambda_outline > 0` of `AnatomyAwareSynthesis`
(issue 18), off by default. Some runs draw heads whose outline is not their US's (cut, flattened,
bulging: `usmr_tf.metrics.outline` measures it); nothing in the paper's objective ties the
synthesized head's outline to the US's.

`intracranial_mask(us)`: the aligned US's head (every pixel above the background -1; its
anechoic holes filled by taking the pixels that lie between head pixels both along their row
and along their column, which fills any hole inside a convex head), shrunk about the image
centre by `scale` (default `usmr_tf.metrics.outline.DEFAULT_SCALE` = 0.903 / 1.03: an aligned
US is centred and -1 outside its skull ellipse grown by 3 %, and the MR it is trained against
covers the intracranial space, at 0.903 of that ellipse). The same region as the outline
check's.

`outline_loss_per_example(synth, us)`: per example, the mean over pixels of
`(1 - M) (x + 1) / 2  +  M relu(-1 + t - x) / t`, t = 0.05 (the outline check's foreground
threshold): MR drawn outside the region (any brightness above the background) and background
left inside it. Both parts are linear in x, so neither saturates; the outside part costs
in proportion to brightness, so faint MR just outside the region costs little while the
outline check counts it as spill.
"""

import keras
from keras import ops

from usmr_tf.metrics.checks import FOREGROUND_THRESHOLD
from usmr_tf.metrics.outline import DEFAULT_SCALE, US_HEAD_THRESHOLD


def _between(mask, axis):
    """Pixels with a head pixel at or before them and at or after them along `axis`."""
    before = ops.cumsum(mask, axis=axis) > 0
    after = ops.flip(ops.cumsum(ops.flip(mask, axis=axis), axis=axis), axis=axis) > 0
    return ops.logical_and(before, after)


def intracranial_mask(us, scale=DEFAULT_SCALE):
    """`[B, H, W, 1]` float32 {0, 1}: the region the MR of aligned US `us` should fill."""
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    us = ops.cast(us, "float32")
    head = ops.cast(us > -1.0 + US_HEAD_THRESHOLD, "float32")
    head = ops.cast(ops.logical_and(_between(head, 1), _between(head, 2)), "float32")
    height, width = us.shape[1], us.shape[2]
    # rounded so that the margins are equal: the region stays centred on (size - 1) / 2
    h, w = height - 2 * int(round((1 - scale) * height / 2)), width - 2 * int(
        round((1 - scale) * width / 2))
    small = ops.cast(keras.ops.image.resize(head, (h, w), interpolation="bilinear") > 0.5,
                     "float32")
    top, left = (height - h) // 2, (width - w) // 2
    return ops.pad(small, [[0, 0], [top, height - h - top], [left, width - w - left], [0, 0]])


def outline_loss_per_example(synth, us, scale=DEFAULT_SCALE, threshold=FOREGROUND_THRESHOLD):
    """`[B]`: MR outside the US's intracranial region plus background left inside it."""
    mask = intracranial_mask(us, scale)
    x = ops.cast(synth, "float32")
    outside = (1.0 - mask) * (x + 1.0) / 2.0
    inside = mask * ops.relu(-1.0 + threshold - x) / threshold
    return ops.mean(outside + inside, axis=(1, 2, 3))
