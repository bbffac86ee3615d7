"""Tiny models for the export, serving and `usmr synthesize` tests, examples and benchmarks."""

import keras

from usmr_tf.models.registry import build_model


def build_full_model(image_size=32, base_filters=4, depth=2, seed=0):
    """The full anatomy-aware model (``build_model("ours", ...)``) with random weights.

    It has the training-only parts (discriminators, EdgeNet, reverse path) an export must
    leave out, which is what the export tests check.
    """
    keras.utils.set_random_seed(seed)
    return build_model("ours", image_size=image_size, base_filters=base_filters, depth=depth)


def tiny_generator(image_size=32, base_filters=4, depth=2, seed=0):
    """The US -> MR inference generator of a tiny full model."""
    return build_full_model(image_size, base_filters, depth, seed).generator
