import keras
import numpy as np
import pytest

from usmr_tf.layers.discriminators import (
    LatentDiscriminator,
    MultiScaleDiscriminator,
    PatchDiscriminator,
)


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


@pytest.mark.parametrize("cls, kwargs", [
    (PatchDiscriminator, {"filters": 4}),
    (LatentDiscriminator, {"filters": 4}),
    (MultiScaleDiscriminator, {"scales": 3, "patch": {"filters": 4}}),
])
def test_round_trip(tmp_path, cls, kwargs):
    d = cls(**kwargs, seed=1)
    inp = keras.Input((32, 32, 2))
    model = keras.Model(inp, d(inp))
    assert cls.from_config(d.get_config()).get_config() == d.get_config()
    model.save(tmp_path / "d.keras")
    x = _x((2, 32, 32, 2))
    np.testing.assert_array_equal(model(x), keras.models.load_model(tmp_path / "d.keras")(x))


# -- MultiScaleDiscriminator (beyond the paper, issue 18) ------------------------------------


def test_multi_scale_is_one_discriminator_per_pooled_copy_tiled_to_scale_0():
    x = _x((2, 32, 32, 1), seed=4)
    d = MultiScaleDiscriminator(scales=2, patch={"filters": 4}, seed=7)
    out = np.asarray(d(x))
    assert out.shape == (2, 4, 4, 2) and d.compute_output_shape((2, 32, 32, 1)) == (2, 4, 4, 2)
    # scale 0 is a lone PatchDiscriminator with the same seed: same weights, same logits
    lone = PatchDiscriminator(filters=4, seed=7)
    np.testing.assert_allclose(out[..., :1], lone(x), rtol=1e-5, atol=1e-6)
    # scale 1 sees the 2 x 2 means (16 x 16), its 2 x 2 logits each repeated over 2 x 2 cells
    pooled = x.reshape(2, 16, 2, 16, 2, 1).mean(axis=(2, 4))
    coarse = np.asarray(d.discs[1](pooled))
    assert coarse.shape == (2, 2, 2, 1)
    np.testing.assert_allclose(out[..., 1:], coarse.repeat(2, axis=1).repeat(2, axis=2), rtol=1e-5,
                               atol=1e-6)
    # so a mean over the output (what the GAN losses take) weighs both scales equally
    assert np.mean(out) == pytest.approx(0.5 * (np.mean(out[..., 0]) + np.mean(coarse)), rel=1e-5)
    # and the scales have weights of their own
    assert not np.allclose(d.discs[0].convs[0].kernel, d.discs[1].convs[0].kernel)


def test_multi_scale_checks_scales_and_image_size():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="disc_scales"):
            MultiScaleDiscriminator(scales=bad)
    assert MultiScaleDiscriminator(scales=2.0).scales == 2
    with pytest.raises(ValueError, match="divisible by 32"):
        MultiScaleDiscriminator(scales=3, patch={"filters": 4}).build((None, 48, 48, 1))

