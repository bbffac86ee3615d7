"""Fixtures for the export / conversion / `usmr synthesize` tests: one tiny exported model."""

import pytest

from usmr_tf.export import export_savedmodel
from usmr_tf.export.testing import build_full_model

IMAGE_SIZE = 32


@pytest.fixture(scope="session")
def full_model():
    """A tiny full model (generator + training-only parts), random weights."""
    return build_full_model(image_size=IMAGE_SIZE, base_filters=4, depth=2)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, full_model):
    """``saved_models/tiny/1`` of the tiny model; usmr.json records slice axis 1 (not the default)."""
    out = tmp_path_factory.mktemp("saved_models")
    version_dir = export_savedmodel(
        full_model, out, "tiny", metadata={"slice_axis": 1, "training_data": "random weights"}
    )
    return version_dir
