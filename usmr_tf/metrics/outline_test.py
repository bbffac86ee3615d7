import numpy as np
import pytest

from usmr_tf.data.hc18 import MASK_MARGIN
from usmr_tf.errors import DataError
from usmr_tf.metrics import outline

SIZE = 96


def _ellipse(a, b, cx=(SIZE - 1) / 2, cy=(SIZE - 1) / 2):
    rr, cc = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    return ((cc - cx) / a) ** 2 + ((rr - cy) / b) ** 2 <= 1


def _aligned_us(seed, a=0.4 * SIZE, b=0.3 * SIZE):
    """An aligned US as `spatial_normalize` leaves it: speckle inside the ellipse x 1.03,
    -1 outside, with a dark (anechoic) hole that must not count as outside the head."""
    rng = np.random.default_rng(seed)
    grow = 1.0 + MASK_MARGIN
    inside = _ellipse(a * grow, b * grow)
    image = np.where(inside, rng.uniform(-0.6, 1.0, (SIZE, SIZE)), -1.0)
    image[_ellipse(4, 3)] = -1.0
    return image, (a, b)


def _mr_head(a, b, factor=outline.INTRACRANIAL, **centre):
    """An MR-like head filling the intracranial space (`factor` of the annotated ellipse)."""
    return np.where(_ellipse(a * factor, b * factor, **centre), 0.3, -1.0)


def test_mr_at_the_intracranial_size_scores_near_one_and_the_us_itself_lower():
    us, (a, b) = _aligned_us(0)
    kept = outline.outline_scores(us, _mr_head(a, b))
    passed_through = outline.outline_scores(us, us)
    assert kept.shape == (1,) and kept[0] > 0.97
    assert 0.8 < passed_through[0] < 0.92  # the skull ring and margin lie outside


@pytest.mark.parametrize("change", ["cut", "shifted", "grown", "shrunk", "filled frame"])
def test_a_head_cut_moved_grown_or_shrunk_scores_lower(change):
    us, (a, b) = _aligned_us(1)
    kept = outline.outline_scores(us, _mr_head(a, b))[0]
    head = _mr_head(a, b)
    if change == "cut":
        head[:, : SIZE // 3] = -1.0  # a bite out of the head's front
    elif change == "shifted":
        head = _mr_head(a, b, cx=(SIZE - 1) / 2 + 8)
    elif change == "grown":
        head = _mr_head(a, b, factor=1.15)
    elif change == "shrunk":
        head = _mr_head(a, b, factor=0.7)
    else:
        head = np.full((SIZE, SIZE), 0.2)
    assert outline.outline_scores(us, head)[0] < kept - 0.07


def test_scale_one_compares_with_the_us_mask_itself():
    us, _ = _aligned_us(2)
    assert outline.outline_scores(us, us, scale=1.0)[0] == pytest.approx(1.0)


def test_no_head_gives_nan_and_mismatches_are_refused():
    us, (a, b) = _aligned_us(3)
    blank = np.full((SIZE, SIZE), -1.0)
    scores = outline.outline_scores(np.stack([us, blank]), np.stack([_mr_head(a, b)] * 2))
    assert np.isfinite(scores[0]) and np.isnan(scores[1])
    with pytest.raises(DataError, match="synthesized"):
        outline.outline_scores(np.stack([us, us]), us)
    with pytest.raises(ValueError, match="scale"):
        outline.outline_scores(us, us, scale=0.0)


def test_a_head_too_small_to_shrink_gives_nan_shares():
    tiny = np.full((SIZE, SIZE), -1.0)
    tiny[40, 40:42] = 0.5  # two pixels: shrunk about their centroid, none is left
    m = outline.outline_measures(tiny[None], tiny[None], scale=0.3)
    spill, missing = m["spill"], m["missing"]
    assert np.isnan(spill[0]) and np.isnan(missing[0])


def test_shares_tell_spill_from_a_cut():
    us, (a, b) = _aligned_us(4)
    grown = _mr_head(a, b, factor=1.1)
    cut = _mr_head(a, b)
    cut[:, : SIZE // 3] = -1.0
    m = outline.outline_measures(np.stack([us, us]), np.stack([grown, cut]))
    spill, missing = m["spill"], m["missing"]
    assert spill[0] > 0.1 and missing[0] < 0.02  # grown: drawn outside, nothing missing
    assert spill[1] < 0.02 and missing[1] > 0.1  # cut: nothing outside, a part missing
