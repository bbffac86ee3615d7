import keras
import numpy as np
import pytest

from usmr_tf.layers.unet_blocks import ConvBlock, Decoder, Encoder


def _x(b=2, s=32, c=1, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (b, s, s, c)).astype("float32")


def test_conv_block_shape():
    y = ConvBlock(6)(_x(c=3))
    assert y.shape == (2, 32, 32, 6)


def test_encoder_shapes_and_compute_output_shape():
    enc = Encoder(base_filters=4, depth=3)
    latent, skips = enc(_x())
    assert latent.shape == (2, 4, 4, 32)
    assert [tuple(s.shape) for s in skips] == [(2, 32, 32, 4), (2, 16, 16, 8), (2, 8, 8, 16)]
    want_latent, want_skips = enc.compute_output_shape((2, 32, 32, 1))
    assert want_latent == tuple(latent.shape)
    assert want_skips == [tuple(s.shape) for s in skips]


def test_decoder_full_and_split_give_same_image():
    enc = Encoder(4, 3)
    latent, skips = enc(_x())
    full = Decoder(4, 3, seed=3)
    out = full((latent, skips))
    assert out.shape == (2, 32, 32, 1)
    assert float(np.max(np.abs(out))) <= 1.0  # tanh head
    # The same stages split in two layers (as around the attention) compute the same thing
    # once they hold the same weights.
    low = Decoder(4, 3, stop_stage=2, include_head=False)
    high = Decoder(4, 3, first_stage=2)
    feats = low((latent, skips))
    assert feats.shape == (2, 16, 16, 8)
    assert low.compute_output_shape((latent.shape, [s.shape for s in skips])) == (2, 16, 16, 8)
    high((feats, skips))
    low.set_weights(full.get_weights()[: len(low.get_weights())])
    high.set_weights(full.get_weights()[len(low.get_weights()) :])
    np.testing.assert_allclose(high((low((latent, skips)), skips)), out, atol=1e-5)


def test_decoder_rejects_bad_stage_range():
    with pytest.raises(ValueError, match="first_stage"):
        Decoder(4, 3, first_stage=2, stop_stage=1)


@pytest.mark.parametrize(
    "layer, inputs_fn",
    [
        (lambda: Encoder(4, 2, seed=1), lambda: _x()),
        (lambda: ConvBlock(5, seed=2), lambda: _x()),
    ],
)
def test_config_and_keras_round_trip(tmp_path, layer, inputs_fn):
    layer = layer()
    x = inputs_fn()
    inp = keras.Input((32, 32, 1))
    out = layer(inp)
    model = keras.Model(inp, out)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(keras.tree.flatten(model(x)), keras.tree.flatten(loaded(x))):
        np.testing.assert_array_equal(a, b)


def test_seed_makes_initial_weights_reproducible():
    a, b, c = Encoder(4, 2, seed=7), Encoder(4, 2, seed=7), Encoder(4, 2, seed=8)
    for layer in (a, b, c):
        layer.build((None, 32, 32, 1))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    # Two convs of one layer get different seeds (an int-seeded initializer repeats itself).
    assert not np.array_equal(a.blocks[0].convs[1].kernel[:, :, :1], a.blocks[1].convs[0].kernel[:, :, :1, :4])
