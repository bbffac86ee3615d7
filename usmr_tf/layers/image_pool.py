"""`ImagePool`: the CycleGAN history of generated images (Shrivastava et al. 2017; Zhu et al.
2017 §4, "a history of the 50 previously generated images") inside the graph.

The buffer is a non-trainable `[pool_size, H, W, C]` float32 weight with a fill count, so it
works in `train_step` under `tf.function` and is saved with the weights (`.weights.h5`,
`.keras`, `BackupAndRestore`). Per call, like the peer's `ImagePool.query`:

- while the pool is not full, each image is stored and returned as it is;
- once full, each image is, with probability 1/2, returned as it is, or swapped with a random
  stored image (which is returned, and the new image takes its slot).

The batch is handled at once: images that draw the same slot in one batch all return that
slot's old image, and the last of them is stored (the peer processes them one by one). The
output never carries gradients (`stop_gradient`): it feeds the discriminator loss only.
`pool_size=0` returns the input unchanged.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="usmr_tf")
class ImagePool(keras.layers.Layer):
    stops_gradient = True  # read by usmr_tf.models.flops

    def __init__(self, pool_size=50, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="pool_seed")

    def build(self, input_shape):
        shape = (max(self.pool_size, 1),) + tuple(input_shape)[1:]
        self.images = self.add_weight(
            shape=shape, initializer="zeros", trainable=False, dtype="float32", name="images"
        )
        self.count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, dtype="int32", name="count"
        )

    def call(self, images, training=None):
        images = tf.stop_gradient(tf.cast(images, "float32"))
        if self.pool_size == 0 or not training:
            return images
        n = tf.shape(images)[0]
        count = tf.convert_to_tensor(self.count)
        position = tf.range(n, dtype=tf.int32)
        filling = position < self.pool_size - count  # stored in the free slots, returned
        coin = keras.random.uniform((n,), seed=self.seed_generator) > 0.5
        slot = keras.random.randint((n,), 0, self.pool_size, seed=self.seed_generator)
        slot = tf.cast(slot, tf.int32)
        swap = tf.logical_and(tf.logical_not(filling), coin)
        stored = tf.convert_to_tensor(self.images)
        old = tf.gather(stored, slot)
        mask = tf.reshape(swap, [-1] + [1] * (len(images.shape) - 1))
        out = tf.where(mask, old, images)
        write = tf.logical_or(filling, swap)
        target = tf.where(filling, count + position, slot)
        idx = tf.boolean_mask(target, write)
        new = tf.tensor_scatter_nd_update(
            stored, idx[:, None], tf.boolean_mask(images, write)
        )
        self.images.assign(new)
        self.count.assign(tf.minimum(count + n, self.pool_size))
        return tf.stop_gradient(out)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size, seed=self.seed)
        return config
