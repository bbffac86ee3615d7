import keras
import numpy as np
import pytest
from scipy.signal import correlate2d

from usmr_tf.layers.edge_net import EDGE_KERNELS, EdgeNet


def test_matches_fixed_kernels_with_reflect_padding():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 1)).astype("float32")
    net = EdgeNet()
    y = np.asarray(net(x))
    assert y.shape == (2, 16, 16, 4)
    for c, kernel in enumerate(EDGE_KERNELS.values()):
        for i in range(2):
            padded = np.pad(x[i, ..., 0], 1, mode="reflect")
            want = correlate2d(padded, kernel, mode="valid")
            np.testing.assert_allclose(y[i, ..., c], want, atol=1e-5)


def test_edges_of_a_step_and_flat_image():
    flat = np.full((1, 8, 8, 1), 0.3, "float32")
    np.testing.assert_allclose(EdgeNet()(flat), 0.0, atol=1e-6)
    step = np.where(np.arange(8)[None, None, :, None] < 4, -1.0, 1.0) * np.ones((1, 8, 8, 1))
    y = np.asarray(EdgeNet()(step.astype("float32")))
    assert y[0, 4, 3:5, 0].min() > 0.9  # Sobel x fires on a vertical edge
    np.testing.assert_allclose(y[0, :, :, 1], 0.0, atol=1e-6)  # Sobel y does not


def test_frozen_and_round_trip(tmp_path):
    net = EdgeNet()
    net.build((None, 16, 16, 1))
    assert net.trainable_weights == [] and len(net.non_trainable_weights) == 4
    clone = EdgeNet.from_config(net.get_config())
    clone.build((None, 16, 16, 1))
    assert clone.trainable_weights == []
    for a, b in zip(net.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)
    inp = keras.Input((16, 16, 1))
    model = keras.Model(inp, EdgeNet()(inp))
    model.save(tmp_path / "e.keras")
    x = np.random.default_rng(1).uniform(-1, 1, (1, 16, 16, 1)).astype("float32")
    np.testing.assert_array_equal(model(x), keras.models.load_model(tmp_path / "e.keras")(x))


def test_rejects_multichannel_input():
    with pytest.raises(ValueError, match="1-channel"):
        EdgeNet()(np.zeros((1, 8, 8, 3), "float32"))
