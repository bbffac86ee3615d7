"""Shared pytest fixtures.

- TensorFlow is told to be quiet and the physical CPU is split into two logical devices
  *before* any test touches the runtime, so `MirroredStrategy` tests get two replicas.
- `shared_data` points at the real public data in ../shared/data (see its SOURCES.md);
  tests that need it skip with a clear reason where it is absent.
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
except RuntimeError:  # runtime already initialised by a plugin: keep going with one device
    pass

REPO = pathlib.Path(__file__).resolve().parent
SHARED_DATA = pathlib.Path(
    os.environ.get("USMR_SHARED_DATA", REPO.parent / "shared" / "data")
).resolve()


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def shared_data():
    if not (SHARED_DATA / "SOURCES.md").exists():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set USMR_SHARED_DATA)")
    return SHARED_DATA
