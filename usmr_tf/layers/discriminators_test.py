import keras
import numpy as np
import pytest

from usmr_tf.layers.discriminators import LatentDiscriminator, PatchDiscriminator


def _x(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_patch_discriminator_shapes(spectral_norm):
    d = PatchDiscriminator(filters=4, spectral_norm=spectral_norm)
    assert d(_x((2, 32, 32, 1)), training=True).shape == (2, 4, 4, 1)
    assert d.compute_output_shape((2, 32, 32, 1)) == (2, 4, 4, 1)
    assert len(d.convs) == 4  # "four conv layers"


def test_structural_input_and_latent_discriminator():
    assert PatchDiscriminator(4)(_x((1, 32, 32, 4))).shape == (1, 4, 4, 1)
    d = LatentDiscriminator(filters=4)
    assert d(_x((3, 4, 4, 32))).shape == (3, 4, 4, 1)
    assert d.get_config()["strides"] == [1, 1, 1, 1] and d.get_config()["kernel_size"] == 3


def test_bad_strides():
    with pytest.raises(ValueError, match="stride"):
        PatchDiscriminator(4, num_layers=4, strides=(2, 2))


@pytest.mark.parametrize("cls", [PatchDiscriminator, LatentDiscriminator])
def test_round_trip(tmp_path, cls):
    d = cls(filters=4, seed=1)
    inp = keras.Input((16, 16, 2))
    model = keras.Model(inp, d(inp))
    assert cls.from_config(d.get_config()).get_config() == d.get_config()
    model.save(tmp_path / "d.keras")
    x = _x((2, 16, 16, 2))
    np.testing.assert_array_equal(model(x), keras.models.load_model(tmp_path / "d.keras")(x))
