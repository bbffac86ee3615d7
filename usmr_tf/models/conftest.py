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
