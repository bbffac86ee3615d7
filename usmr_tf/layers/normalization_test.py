import keras
import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.layers.attention import CrossModalAttention
from usmr_tf.layers.normalization import InstanceNormalization, instance_norm


def _pair(affine):
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(3, 8, 6, 5)).astype("float32")
    ours = instance_norm(affine=affine)
    ref = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, center=affine, scale=affine)
    ours.build(x.shape)
    ref.build(x.shape)
    if affine:
        rng = np.random.default_rng(1)
        weights = [rng.normal(size=5).astype("float32"), rng.normal(size=5).astype("float32")]
        ref.set_weights(weights)
        ours.set_weights(ref.get_weights())  # interchangeable weights
    return x, ours, ref


@pytest.mark.parametrize("affine", [True, False])
def test_equals_group_normalization_with_one_group_per_channel(affine):
    x, ours, ref = _pair(affine)
    np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), atol=2e-5)
    y = ours(x).numpy()
    if not affine:  # per example and channel: mean 0, variance 1 over (H, W)
        np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
        np.testing.assert_allclose(y.var(axis=(1, 2)), 1.0, atol=1e-3)


def test_bfloat16_policy_keeps_float32_statistics():
    x = (np.random.default_rng(2).normal(size=(2, 8, 8, 4)) * 100 + 1000).astype("float32")
    ours = InstanceNormalization(dtype="mixed_bfloat16")
    ref = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, dtype="mixed_bfloat16")
    a, b = ours(x), ref(x)
    assert a.dtype == b.dtype == tf.bfloat16
    np.testing.assert_allclose(a.numpy().astype("float32"), b.numpy().astype("float32"),
                               atol=0.04)


def test_config_round_trip_and_group_count_fixed():
    layer = InstanceNormalization(epsilon=1e-3, center=False, name="n")
    clone = InstanceNormalization.from_config(layer.get_config())
    assert clone.groups == -1 and clone.epsilon == 1e-3 and clone.center is False
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, InstanceNormalization)


def _op_types(fn, *specs):
    graph = tf.function(fn).get_concrete_function(*specs).graph
    return {op.type for op in graph.get_operations()}


def test_no_run_time_shape_ops_with_a_dynamic_batch():
    """Keras' GroupNormalization reads shapes at run time (what splits XNNPACK's graph)."""
    spec = tf.TensorSpec([None, 16, 16, 8])
    ours, ref = instance_norm(), keras.layers.GroupNormalization(groups=-1)
    ours.build(spec.shape)
    ref.build(spec.shape)
    assert "Shape" in _op_types(ref, spec)  # what the replacement removes
    assert not {"Shape", "Pack", "Reshape"} & _op_types(ours, spec)


def test_attention_has_no_run_time_shape_ops_with_a_dynamic_batch():
    spec = tf.TensorSpec([None, 8, 8, 16])
    layer = CrossModalAttention(seed=0)
    layer.build((spec.shape, spec.shape))
    assert not {"Shape", "Pack"} & _op_types(lambda a, b: layer((a, b)), spec, spec)


class _Holder(keras.Model):
    """Norms held in a list, as the U-Net blocks hold them (addressed by class name)."""

    def __init__(self, make):
        super().__init__()
        self.norms = [make(), make()]

    def call(self, x):
        for norm in self.norms:
            x = norm(x)
        return x


def test_checkpoints_of_keras_group_normalization_load_unchanged(tmp_path):
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 4)).astype("float32")
    old = _Holder(lambda: keras.layers.GroupNormalization(groups=-1, epsilon=1e-5))
    old(x)
    rng = np.random.default_rng(4)
    old.set_weights([rng.normal(size=w.shape).astype("float32") for w in old.get_weights()])
    old.save_weights(tmp_path / "old.weights.h5")
    new = _Holder(instance_norm)
    new(x)
    new.load_weights(tmp_path / "old.weights.h5")
    np.testing.assert_allclose(new(x).numpy(), old(x).numpy(), atol=2e-5)
