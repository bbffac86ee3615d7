"""The shipped pretrained model `fetal_hc18_v2` (saved_models/, committed): loads by name,
has the documented signatures and only inference variables, and maps a real HC18 US image to
a finite, in-range image that is not the input. Research output, not for diagnosis."""

import json
import os

import numpy as np
import pytest

import usmr_tf
from usmr_tf.presets import REPO_PRESETS, list_presets

PRESET = "fetal_hc18_v2"
TRAINING_ONLY = ("discriminator", "edge_net", "back_encoder", "back_decoder", "us_decoder_top")


@pytest.fixture(scope="module")
def model():
    assert "USMR_PRESETS_DIR" not in os.environ, "this test checks the repository's saved_models/"
    assert PRESET in list_presets(), f"{PRESET} missing from {REPO_PRESETS}"
    return usmr_tf.from_preset(PRESET)


@pytest.fixture(scope="module")
def hc18_slice(shared_data, model):
    """A held-out HC18 image (test split of the preset's data config), pre-processed as in training."""
    from usmr_tf.data import load_hc18

    path = shared_data / "us" / "hc18" / "training_set" / "000_HC.png"
    image, _ = load_hc18(path, size=model.image_size)  # 000 is in the test split
    return image


def test_signatures_and_metadata(model):
    assert set(model.signatures) >= {"serving_default", "predict_png"}
    spec = model.signatures["serving_default"].structured_input_signature[1]["us_image"]
    assert spec.shape.as_list() == [None, model.image_size, model.image_size, 1]
    meta = json.loads((REPO_PRESETS / PRESET / "usmr.json").read_text())
    assert meta["image_size"] == model.image_size == 128
    assert "HC18" in meta["training_data"] and "CRL" not in meta["training_data"].replace(
        "no CRL", "")


def test_only_inference_variables(model):
    names = [v.name for v in model.variables]
    assert names
    for name in names:
        assert not any(part in name for part in TRAINING_ONLY), name
    for part in ("anatomy_encoder", "mr_decoder", "cross_modal_attention"):
        assert any(part in name for name in names), part


def test_output_on_real_us_is_finite_in_range_and_not_identity(model, hc18_slice):
    us = hc18_slice.reshape(1, model.image_size, model.image_size, 1)
    mr = model(us)
    assert mr.shape == us.shape
    assert np.isfinite(mr).all()
    assert mr.min() >= -1.0 and mr.max() <= 1.0
    assert np.abs(mr - us).mean() > 0.1  # not an identity map
    assert abs(np.corrcoef(mr.ravel(), us.ravel())[0, 1]) < 0.95
    assert mr.std() > 0.05  # not a constant image


def test_outputs_follow_their_inputs_no_mode_collapse(model, repo_root):
    """Issue 11: the shipped model must not map every US to one image. On the six held-out HC18
    images of the bundled sample set its output diversity (pairwise L1 of outputs / of inputs)
    stays at or above the 0.5 floor of the best-checkpoint rule (a collapsed model scores ~0)."""
    from usmr_tf.data import load_hc18
    from usmr_tf.metrics.diversity import output_diversity

    folder = repo_root / "examples" / "sample_data" / "us" / "hc18" / "training_set"
    paths = sorted(folder.glob("*_HC.png"))
    assert len(paths) >= 4, folder
    size = model.image_size
    us = np.stack([load_hc18(p, size=size)[0] for p in paths]).reshape(len(paths), size, size, 1)
    mr = np.asarray(model(us.astype(np.float32)))
    assert output_diversity(us, mr) >= 0.5
