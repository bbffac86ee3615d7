"""Deterministic per-layer seeds derived from one model seed.

Keras 3 initializers built with an integer seed return the *same* values on every call, so
each sub-layer needs its own seed. `sub_seed(seed, "encoder/level0/conv1")` derives one by
hashing the path; `seed=None` keeps Keras' global RNG (seeded by `keras.utils.set_random_seed`).
"""

import zlib

import keras


def sub_seed(seed, *path):
    """Returns an int seed for the sub-layer at `path`, or None when `seed` is None."""
    if seed is None:
        return None
    key = "/".join([str(int(seed))] + [str(p) for p in path])
    return zlib.crc32(key.encode("utf-8")) & 0x7FFFFFFF


def kernel_initializer(seed, *path):
    """Glorot-uniform (the Keras default), seeded per sub-layer when `seed` is given."""
    return keras.initializers.GlorotUniform(seed=sub_seed(seed, *path))
