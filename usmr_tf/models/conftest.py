"""Fixtures for the model tests: tiny phantom batches (32x32) and a tiny model config."""

import numpy as np
import pytest

TINY = {"image_size": 32, "base_filters": 4, "depth": 2}


@pytest.fixture(scope="session")
def phantom_batch():
    """`(us, mr, mr_paired)`, 16 unpaired 32x32 phantom slices each, float32 in [-1, 1]."""
    from usmr_tf.data.phantoms import unpaired_phantoms

    us, mr, mr_paired = unpaired_phantoms(16, 16, size=32, seed=0)
    return tuple(np.asarray(a, "float32") for a in (us, mr, mr_paired))


@pytest.fixture
def tiny_config():
    return dict(TINY)


def spectral_vector_us(model):
    """`{path: vector_u}` (numpy copies) of each `SpectralNormalization` in the discriminators."""
    import keras

    return {
        layer.vector_u.path: layer.vector_u.numpy().copy()
        for d in model.discriminators
        for layer in d._flatten_layers()
        if isinstance(layer, keras.layers.SpectralNormalization)
    }


def assert_fit_runs_power_iteration(model, us, mr):
    """One `fit` step updates every SN `vector_u`; `training=False` passes leave them alone."""
    import tensorflow as tf

    model.compile()
    before = spectral_vector_us(model)
    assert before, "model has no SpectralNormalization layers"
    model.compute_loss_terms(us[:2], mr[:2])  # training=False: no power iteration
    inference = spectral_vector_us(model)
    for path, u in before.items():
        np.testing.assert_array_equal(inference[path], u, err_msg=path)
    ds = tf.data.Dataset.from_tensor_slices((us[:2], mr[:2])).batch(2)
    model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    after = spectral_vector_us(model)
    unchanged = [p for p, u in before.items() if np.array_equal(after[p], u)]
    assert not unchanged, f"fit did not run the power iteration of {unchanged}"
