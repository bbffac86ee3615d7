"""Patch-wise contrastive correspondence (PatchNCE, Park et al. 2020, "Contrastive Learning
for Unpaired Image-to-Image Translation"). NOT part of Jiao et al. 2019: an option
(`nce_weight > 0`) of `AnatomyAwareSynthesis`, off by default.

Used here as a per-patch form of the paper's bi-directional latent consistency: the features
that encoder-D extracts from the synthesized MR at a location (queries) must identify the
features encoder-A extracted from the input US at the *same* location (positive key) among
the other locations of that image (negatives). A generator that outputs one image for every
input cannot satisfy it, so it counters mode collapse directly; unlike the distribution-level
`D_bi` it ties each output patch to its own input patch.

`PatchNCEHead`: one small MLP (1x1 conv -> ReLU -> 1x1 conv, Park et al.'s `F_l`) per encoder
level. `patch_nce_per_example`: the InfoNCE loss, `[B]`, averaged over levels; the keys are
`stop_gradient`-ed as in the reference implementation.
"""

import keras
import tensorflow as tf

from usmr_tf.layers.seeding import kernel_initializer


@keras.saving.register_keras_serializable(package="usmr_tf")
class PatchNCEHead(keras.layers.Layer):
    """MLP projection heads, one per feature level; input/output lists of `[B, P, C_l]`."""

    def __init__(self, units=128, num_levels=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.num_levels = int(num_levels)
        self.seed = seed
        self.mlps = [
            (
                keras.layers.Dense(self.units, activation="relu", name=f"level{i}_fc0",
                                   kernel_initializer=kernel_initializer(seed, "nce", i, 0)),
                keras.layers.Dense(self.units, name=f"level{i}_fc1",
                                   kernel_initializer=kernel_initializer(seed, "nce", i, 1)),
            )
            for i in range(self.num_levels)
        ]

    def build(self, input_shapes):
        for (fc0, fc1), shape in zip(self.mlps, input_shapes):
            fc0.build(tuple(shape))
            fc1.build(tuple(shape)[:-1] + (self.units,))

    def call(self, features):
        return [fc1(fc0(f)) for (fc0, fc1), f in zip(self.mlps, features)]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, num_levels=self.num_levels, seed=self.seed)
        return config


def sample_patches(feature_maps, num_patches, seed):
    """Same random locations for each map of a level pair: list of `[B, H, W, C]` -> `[B, P, C]`.

    `feature_maps`: list of tensors sharing H and W. P = min(num_patches, H*W).
    """
    shape = tf.shape(feature_maps[0])
    hw = shape[1] * shape[2]
    order = tf.argsort(tf.random.stateless_uniform(tf.reshape(hw, [1]), seed=seed))
    static_hw = feature_maps[0].shape[1] * feature_maps[0].shape[2]
    p = min(int(num_patches), int(static_hw))
    idx = order[:p]
    out = []
    for f in feature_maps:
        flat = tf.reshape(f, [shape[0], hw, f.shape[-1]])
        out.append(tf.gather(flat, idx, axis=1))
    return out


def info_nce_per_example(queries, keys, temperature=0.07):
    """`[B, P, C]` queries vs keys (row i's positive is key i) -> `[B]` cross-entropy."""
    q = tf.math.l2_normalize(tf.cast(queries, tf.float32), axis=-1)
    k = tf.math.l2_normalize(tf.stop_gradient(tf.cast(keys, tf.float32)), axis=-1)
    logits = tf.einsum("bpc,bqc->bpq", q, k) / temperature
    positive = tf.reduce_sum(q * k, axis=-1) / temperature  # the diagonal of `logits`
    return tf.reduce_mean(tf.reduce_logsumexp(logits, axis=-1) - positive, axis=-1)


def patch_nce_per_example(query_maps, key_maps, query_head, key_head, num_patches, seed,
                          temperature=0.07):
    """PatchNCE over levels: lists of `[B, H_l, W_l, C_l]` maps -> `[B]` (mean over levels)."""
    total = 0.0
    for level, (qm, km) in enumerate(zip(query_maps, key_maps)):
        level_seed = tf.stack([tf.cast(seed[0], tf.int32), tf.cast(seed[1], tf.int32) + level])
        q, k = sample_patches([qm, km], num_patches, level_seed)
        total += info_nce_per_example(
            query_head.mlps[level][1](query_head.mlps[level][0](q)),
            key_head.mlps[level][1](key_head.mlps[level][0](k)),
            temperature,
        )
    return total / len(query_maps)
