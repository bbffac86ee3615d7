import numpy as np
import pytest
from scipy import ndimage

from usmr_tf.errors import DataError
from usmr_tf.metrics import structure, synthetic


def _us_like(seed):
    head = synthetic.head_phantom(64, seed=seed)
    speckle = np.random.default_rng(seed).normal(0, 0.1, head.shape) * (head > -0.95)
    return np.clip(head + speckle, -1, 1)


def test_edge_preserving_transform_scores_high_unrelated_low():
    us = np.stack([_us_like(s) for s in range(3)])
    # contrast inversion + a monotone remap + median filter keep every edge
    preserved = ndimage.median_filter(-np.tanh(2 * us), size=(1, 3, 3))
    unrelated = np.stack([synthetic.head_phantom(64, seed=50 + s) for s in range(3)])
    noise = np.random.default_rng(0).uniform(-1, 1, us.shape)
    high = structure.structure_scores(us, preserved)
    assert np.all(high > 0.9), high
    assert np.all(structure.structure_scores(us, unrelated) < 0.5)
    assert np.all(np.abs(structure.structure_scores(us, noise)) < 0.2)


def test_score_falls_as_structure_moves():
    us = _us_like(0)
    scores = [structure.structure_score(us, np.roll(us, k, axis=1)) for k in (0, 2, 6)]
    assert scores[0] > scores[1] > scores[2]


def test_edge_map_of_a_step():
    image = np.full((16, 16), -1.0)
    image[:, 8:] = 1.0
    edges = structure.edge_map(image, sigma=0)
    assert edges[:, 7:9].min() > 0.4 and edges[:, :6].max() == 0 and edges[:, 10:].max() == 0


def test_shape_mismatch_raises():
    with pytest.raises(DataError, match="shape mismatch"):
        structure.structure_score(np.zeros((2, 32, 32)), np.zeros((3, 32, 32)))


def test_edge_map_agrees_with_the_edgenet_layer():
    from usmr_tf.layers.edge_net import EdgeNet

    image = synthetic.head_phantom(32, seed=3)
    maps = np.asarray(EdgeNet()(image[None, ..., None]))[0]
    expected = np.hypot(maps[..., 0], maps[..., 1])
    np.testing.assert_allclose(structure.edge_map(image, sigma=0), expected, atol=1e-5)
