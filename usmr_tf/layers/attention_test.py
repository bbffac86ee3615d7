import keras
import numpy as np
import pytest

from usmr_tf.layers.attention import CrossModalAttention


def _feats(seed=0, b=2, h=8, w=6, cu=16, cm=12):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(b, h, w, cu)).astype("float32"),
        rng.normal(size=(b, h, w, cm)).astype("float32"),
    )


def test_zero_eta_is_identity_and_shape_preserving():
    f_u, f_m = _feats()
    att = CrossModalAttention()
    out = att([f_u, f_m])
    assert out.shape == f_m.shape
    np.testing.assert_array_equal(out, f_m)


def _numpy_attention(att, f_u, f_m):
    def conv1x1(layer, x):
        return x @ layer.kernel.numpy()[0, 0] + layer.bias.numpy()

    b, h, w, _ = f_m.shape
    n = h * w
    d = conv1x1(att.delta, f_u).reshape(b, n, -1)
    p = conv1x1(att.phi, f_u).reshape(b, n, -1)
    g = conv1x1(att.g, f_m).reshape(b, n, -1)
    logits = d @ p.transpose(0, 2, 1)  # delta^T phi: N x N
    a = np.exp(logits - logits.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    return conv1x1(att.eta, (a @ g).reshape(b, h, w, -1)) + f_m


def test_matches_numpy_formulation_and_is_residual():
    f_u, f_m = _feats(1)
    att = CrossModalAttention(key_channels=4, value_channels=6, eta_initializer="glorot_uniform", seed=3)
    out = np.asarray(att([f_u, f_m]))
    assert att.delta.kernel.shape == (1, 1, 16, 4) and att.g.kernel.shape == (1, 1, 12, 6)
    assert att.eta.kernel.shape == (1, 1, 6, 12)
    np.testing.assert_allclose(out, _numpy_attention(att, f_u, f_m), rtol=1e-4, atol=1e-4)
    assert not np.allclose(out, f_m)
    # Residual: eta(...) + f_M, so shifting f_M by c with g/eta fixed shifts eta's input only
    # through g; with eta zeroed the output is exactly f_M again.
    att.eta.kernel.assign(np.zeros(att.eta.kernel.shape, "float32"))
    att.eta.bias.assign(np.zeros(att.eta.bias.shape, "float32"))
    np.testing.assert_allclose(att([f_u, f_m]), f_m, atol=1e-6)


def test_attention_map_rows_sum_to_one_and_depend_on_us_only():
    f_u, f_m = _feats(2)
    att = CrossModalAttention()
    att([f_u, f_m])
    a = np.asarray(att.attention_map(f_u))
    assert a.shape == (2, 48, 48)
    np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-5)


def test_config_and_keras_round_trip(tmp_path):
    f_u, f_m = _feats(3)
    att = CrossModalAttention(key_channels=2, eta_initializer="ones", seed=5)
    iu, im = keras.Input(f_u.shape[1:]), keras.Input(f_m.shape[1:])
    model = keras.Model([iu, im], att([iu, im]))
    clone = CrossModalAttention.from_config(att.get_config())
    assert clone.get_config() == att.get_config()
    model.save(tmp_path / "att.keras")
    loaded = keras.models.load_model(tmp_path / "att.keras")
    np.testing.assert_array_equal(model([f_u, f_m]), loaded([f_u, f_m]))


def test_spatial_mismatch_fails():
    f_u, _ = _feats()
    _, f_m = _feats(h=4, w=4)
    with pytest.raises(Exception):
        CrossModalAttention()([f_u, f_m])
