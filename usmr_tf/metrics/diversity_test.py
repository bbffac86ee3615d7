import numpy as np
import pytest

from usmr_tf.metrics.diversity import mean_pairwise_l1, output_diversity


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 1)).astype(np.float32)


def test_mean_pairwise_l1_matches_brute_force():
    x = _images(5)
    brute = np.mean([np.abs(x[i] - x[j]).mean() for i in range(5) for j in range(i + 1, 5)])
    assert mean_pairwise_l1(x) == pytest.approx(brute, rel=1e-12)


def test_identity_is_one_collapse_is_zero_and_scaling_is_linear():
    us = _images(6)
    assert output_diversity(us, us) == pytest.approx(1.0)
    collapsed = np.repeat(us[:1], 6, axis=0)
    assert output_diversity(us, collapsed) == 0.0
    assert output_diversity(us, 0.5 * us) == pytest.approx(0.5)


def test_rejects_mismatched_or_degenerate_sets():
    us = _images(4)
    with pytest.raises(ValueError, match="3 synthesized images for 4"):
        output_diversity(us, us[:3])
    with pytest.raises(ValueError, match="identical"):
        output_diversity(np.repeat(us[:1], 4, axis=0), us)
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_l1(us[:1])
