"""`synthesize_slices`: an export's MR for prepared US slices (what the benchmarks score)."""

import numpy as np
import pytest

from usmr_tf.errors import ConfigError
from usmr_tf.export.runtimes import SavedModelRunner, random_us_batch
from usmr_tf.export.synthesis import synthesize_slices


def test_batches_give_the_runners_output(exported):
    us = random_us_batch(7, 32, seed=3)
    want = SavedModelRunner(exported.parent)(us)
    got = synthesize_slices(exported.parent, us, batch_size=3)  # batches of 3, 3, 1
    assert got.shape == us.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)  # batch size moves float sums ~1e-6
    # the version folder itself and the model folder with an explicit version: the same model
    np.testing.assert_allclose(synthesize_slices(exported, us), want, atol=1e-5)
    np.testing.assert_allclose(synthesize_slices(exported.parent, us, version=1), want, atol=1e-5)
    assert synthesize_slices(exported.parent, us[:0]).shape == (0, 32, 32, 1)


def test_a_missing_version_is_refused(exported):
    with pytest.raises(ConfigError, match="7"):
        synthesize_slices(exported.parent, random_us_batch(1, 32), version=7)
