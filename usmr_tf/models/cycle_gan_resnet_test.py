"""CycleGAN with the ResNet generator, 70x70 PatchGAN and image pool (small sizes)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.layers.image_pool import ImagePool
from usmr_tf.layers.resnet_blocks import PatchGAN70, ReflectionPad2D, SingleOutputConv2D
from usmr_tf.models.cycle_gan import CycleGAN
from usmr_tf.models.resnet_generator import ResnetGenerator

PEER = dict(generator="resnet6", discriminator="patchgan70", depth=2, base_filters=4,
            disc_filters=4, use_identity=True, pool_size=4)


def test_default_cyclegan_is_unchanged(tiny_config):
    model = CycleGAN(**tiny_config)
    config = model.get_config()
    assert (config["generator"], config["discriminator"], config["pool_size"]) == ("unet", "patch", 0)
    assert not hasattr(model, "fake_mr_pool")
    assert model._term_names()[0] == ["loss_app", "loss_app_back", "loss_cycle"]


def test_resnet9_layout_and_parameter_count():
    g = ResnetGenerator(image_size=64, base_filters=64, num_blocks=9)
    # the peer's ResnetGenerator(1, 1, ngf=64, n_blocks=9) with affine-free instance norm
    n = sum(int(np.prod(v.shape)) for v in g.trainable_variables)
    assert n == 11_365_633
    assert g(tf.zeros([1, 64, 64, 1])).shape == (1, 64, 64, 1)
    d = PatchGAN70(64)
    d.build((None, 128, 128, 1))
    assert d.compute_output_shape((None, 128, 128, 1)) == (None, 14, 14, 1)
    assert sum(int(np.prod(v.shape)) for v in d.trainable_variables) == 2_762_689


def test_single_output_conv_matches_conv2d():
    a = SingleOutputConv2D(3)
    a.build((2, 9, 9, 5))
    b = keras.layers.Conv2D(1, 3)
    b.build((2, 9, 9, 5))
    b.set_weights([w + 0.1 for w in a.get_weights()])
    a.set_weights(b.get_weights())
    x = tf.random.normal([2, 9, 9, 5], seed=1)
    np.testing.assert_allclose(a(x), b(x), atol=1e-5)
    assert SingleOutputConv2D.from_config(a.get_config()).kernel_size == (3, 3)


def test_reflection_pad():
    x = tf.reshape(tf.range(9.0), [1, 3, 3, 1])
    y = ReflectionPad2D(1)(x)
    assert y.shape == (1, 5, 5, 1)
    assert float(y[0, 0, 0, 0]) == 4.0  # reflects x[1, 1]


def test_image_pool_fills_then_swaps():
    pool = ImagePool(3, seed=0)
    pool.build((None, 2, 2, 1))
    first = tf.ones([2, 2, 2, 1])
    np.testing.assert_array_equal(pool(first, training=True), first)  # filling: passthrough
    assert int(pool.count.numpy()) == 2
    second = 2 * tf.ones([4, 2, 2, 1])
    out = pool(second, training=True).numpy()
    assert int(pool.count.numpy()) == 3
    np.testing.assert_array_equal(out[0], second[0])  # fills the last free slot
    assert set(np.unique(out)) <= {1.0, 2.0, 0.0}
    np.testing.assert_array_equal(pool(second, training=False), second)  # inference: identity
    assert ImagePool.from_config(pool.get_config()).pool_size == 3


def test_peer_cyclegan_trains_and_saves_its_pool(tmp_path, phantom_batch):
    us, mr, _ = phantom_batch
    model = CycleGAN(image_size=32, seed=0, **PEER)
    assert model._term_names()[0][-1] == "loss_identity"
    model.compile()
    ds = tf.data.Dataset.from_tensor_slices((us[:4], mr[:4])).batch(2).repeat()
    history = model.fit(ds, steps_per_epoch=3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert int(model.fake_mr_pool.count.numpy()) == 4  # 3 steps x 2 images, capped at 4
    model.save_weights(str(tmp_path / "w.weights.h5"))
    clone = CycleGAN.from_config(model.get_config())
    clone.load_weights(str(tmp_path / "w.weights.h5"))
    np.testing.assert_array_equal(clone.fake_us_pool.images.numpy(),
                                  model.fake_us_pool.images.numpy())
    assert clone.get_config()["generator"] == "resnet6"


@pytest.mark.parametrize("bad", [
    {"generator": "vgg"}, {"discriminator": "x"}, {"pool_size": -1},
    {"discriminator": "patchgan70", "disc_scales": 2},  # multi-scale: the patch discriminator only
])
def test_bad_options(bad, tiny_config):
    with pytest.raises(ValueError):
        CycleGAN(**tiny_config, **bad)
