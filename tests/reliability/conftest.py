"""A tiny exported model and a tiny trained `.keras` checkpoint for the bad-input matrix."""

import shutil

import numpy as np
import pytest
from PIL import Image

from usmr_tf.export import export_savedmodel
from usmr_tf.export.testing import build_full_model


@pytest.fixture(scope="session")
def good_model(tmp_path_factory):
    """`saved_models/tiny` (version 1) of a 32x32 model with random weights."""
    out = tmp_path_factory.mktemp("saved_models")
    version_dir = export_savedmodel(build_full_model(32, 4, 2), out, "tiny")
    return version_dir.parent


@pytest.fixture(scope="session")
def good_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "model.keras"
    build_full_model(32, 4, 2).save(str(path))
    return path


@pytest.fixture
def copy_model(good_model, tmp_path):
    """A fresh copy of the good model to break: `copy_model()` -> its folder."""

    def make(name="m"):
        dst = tmp_path / "models" / name
        shutil.copytree(good_model, dst)
        return dst

    return make


@pytest.fixture
def us_png(tmp_path):
    path = tmp_path / "in" / "us.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(0).uniform(0, 255, (40, 48))).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path
