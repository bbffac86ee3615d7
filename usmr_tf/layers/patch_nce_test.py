import numpy as np
import tensorflow as tf

from usmr_tf.layers.patch_nce import (
    PatchNCEHead,
    info_nce_per_example,
    patch_nce_per_example,
    sample_patches,
)


def _maps(seed, shape=(2, 8, 8, 6)):
    return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def test_info_nce_is_low_for_matching_features_and_log_p_for_unrelated():
    k = _maps(0, (3, 64, 16))
    matched = info_nce_per_example(k, k, temperature=0.07).numpy()
    unrelated = info_nce_per_example(_maps(1, (3, 64, 16)), k, temperature=0.07).numpy()
    assert matched.shape == (3,)
    assert np.all(matched < 0.1)
    assert np.all(unrelated > 2.0)  # ~log(64) = 4.2 for unrelated features, spread by chance


def test_gradient_flows_to_queries_only():
    q, k = tf.Variable(_maps(0, (2, 16, 8))), tf.Variable(_maps(1, (2, 16, 8)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(info_nce_per_example(q, k))
    gq, gk = tape.gradient(loss, [q, k])
    assert gq is not None and gk is None


def test_sample_patches_uses_the_same_locations_for_both_maps():
    a = _maps(0)
    qa, ka = sample_patches([a, a * 2.0], 10, tf.constant([1, 2]))
    assert qa.shape == (2, 10, 6)
    np.testing.assert_allclose(ka, 2.0 * qa)
    everything, _ = sample_patches([a, a], 1000, tf.constant([1, 2]))
    assert everything.shape == (2, 64, 6)  # capped at H*W


def test_patch_nce_over_levels_and_head_config():
    maps = [_maps(0, (2, 8, 8, 4)), _maps(1, (2, 4, 4, 8))]
    head = PatchNCEHead(units=16, num_levels=2, seed=3)
    head.build([(None, None, 4), (None, None, 8)])
    same = patch_nce_per_example(maps, maps, head, head, 32, tf.constant([0, 0]))
    other = patch_nce_per_example([_maps(5, (2, 8, 8, 4)), _maps(6, (2, 4, 4, 8))], maps, head,
                                  head, 32, tf.constant([0, 0]))
    assert same.shape == (2,) and np.all(same.numpy() < other.numpy())
    clone = PatchNCEHead.from_config(head.get_config())
    assert clone.units == 16 and clone.num_levels == 2 and clone.seed == 3
