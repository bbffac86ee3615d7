"""Output diversity: does the synthesized MR still follow its input, or is it one image for all?

`output_diversity(us, synth)` = mean pairwise mean-absolute difference between the synthesized
images of a set, divided by the same quantity between their input US images. A generator that
maps every input to the same image (mode collapse) scores 0; one that passes its input through
scores 1; a set of real MR slices scores ~0.6-0.7 against the US set (issue 11). Research
output, not for diagnosis.
"""

import numpy as np

from usmr_tf.metrics.checks import as_image_batch


def mean_pairwise_l1(images):
    """Mean over all pairs i < j of mean |x_i - x_j| for `[N, H, W(, 1)]`, N >= 2."""
    x = as_image_batch(images, "images")
    x = x.reshape(len(x), -1)
    if len(x) < 2:
        raise ValueError("diversity needs at least 2 images")
    total, pairs = 0.0, 0
    for i in range(len(x) - 1):  # O(N^2) pairs, O(N) memory
        total += np.abs(x[i + 1:] - x[i]).mean(axis=1).sum()
        pairs += len(x) - 1 - i
    return float(total / pairs)


def output_diversity(us, synth):
    """Mean pairwise L1 of `synth` over mean pairwise L1 of `us` (same N). 0 = collapsed."""
    us = as_image_batch(us, "us")
    synth = as_image_batch(synth, "synthesized MR")
    if len(us) != len(synth):
        raise ValueError(f"{len(synth)} synthesized images for {len(us)} US images")
    ref = mean_pairwise_l1(us)
    if ref <= 0:
        raise ValueError("the US images are all identical: diversity is undefined")
    return mean_pairwise_l1(synth) / ref
