"""`ema_decay`: a moving average of the generator's weights, used for inference and export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.export.savedmodel import inference_generator
from usmr_tf.models import registry
from usmr_tf.models.conftest import TINY


def _fit(model, us, mr, steps=1):
    ds = tf.data.Dataset.from_tensor_slices((us[:2], mr[:2])).batch(2).repeat()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)


def _values(weights):
    return [np.asarray(w.numpy()).copy() for w in weights]


def test_off_by_default_and_checked():
    model = registry.build_model("ours", seed=0, **TINY)
    assert model.ema_decay == 0.0 and model.ema_generator is None
    assert model.inference_generator is model.generator
    with pytest.raises(Exception, match="ema_decay"):
        registry.build_model("ours", ema_decay=1.0, **TINY)


@pytest.mark.parametrize("name", ["ours", "cyclegan"])
def test_step_follows_the_formula_and_inference_uses_the_average(name, phantom_batch):
    us, mr, _ = phantom_batch
    model = registry.build_model(name, seed=0, ema_decay=0.9, **TINY)
    model.compile()
    live0 = _values(model.generator.weights)
    np.testing.assert_array_equal(_values(model.ema_generator.weights)[0], live0[0])
    _fit(model, us, mr)
    live1, ema1 = _values(model.generator.weights), _values(model.ema_generator.weights)
    d = min(0.9, 2.0 / 11.0)  # warm-up at step t = 1
    trainable = {id(v) for v in model.generator.trainable_weights}
    moved = 0.0
    for w, a, b, e in zip(model.generator.weights, live0, live1, ema1):
        expected = d * a + (1 - d) * b if id(w) in trainable else b
        np.testing.assert_allclose(e, expected, atol=1e-7, err_msg=w.path)
        moved = max(moved, float(np.abs(b - a).max()))
    assert moved > 0  # the generator moved, so the average lags behind it
    _fit(model, us, mr, steps=3)
    x = us[:2]
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model.ema_generator(x)), atol=1e-6)
    assert not np.allclose(np.asarray(model(x)), np.asarray(model.generator(x)), atol=1e-6)
    assert inference_generator(model) is model.ema_generator
    # the average is not trained by either optimizer
    ema_ids = {id(v) for v in model.ema_generator.weights}
    assert not ema_ids & {id(v) for v in model.generator_variables}
    assert not ema_ids & {id(v) for v in model.trainable_variables}


def test_checkpoint_and_config_carry_the_average(tmp_path, phantom_batch):
    us, mr, _ = phantom_batch
    model = registry.build_model("ours", seed=0, ema_decay=0.99, **TINY)
    model.compile()
    _fit(model, us, mr, steps=2)
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    config = model.get_config()
    assert config["ema_decay"] == 0.99
    again = type(model).from_config(config)
    again.load_weights(path)
    for a, b in zip(model.ema_generator.weights, again.ema_generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert not all(np.array_equal(a.numpy(), b.numpy())
                   for a, b in zip(model.generator.weights, again.ema_generator.weights))


@pytest.mark.slow  # ~50 s, an option off by default (docs/testing.md)
def test_mirrored_replicas_keep_one_average(phantom_batch):
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("needs the 2 logical CPUs made by conftest.py")
    us, mr, _ = phantom_batch
    strategy = tf.distribute.MirroredStrategy([d.name for d in devices[:2]])
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = registry.build_model("ours", seed=0, ema_decay=0.9, **TINY)
        model.compile()
    ds = tf.data.Dataset.from_tensor_slices((us[:4], mr[:4])).batch(4).repeat()
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    for v in model.ema_generator.weights:
        tf_var = getattr(v, "_value", v)
        replicas = [np.asarray(r) for r in getattr(tf_var, "values", [tf_var])]
        assert len(replicas) == 2, v.path
        np.testing.assert_array_equal(replicas[0], replicas[1], err_msg=v.path)
