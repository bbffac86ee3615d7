"""The recipe check of a resumed run (`backup._diff`)."""

import copy

from usmr_tf.training import backup, testing
from usmr_tf.training.recipe import load_recipe


def _fingerprint(*overrides):
    recipe = load_recipe(testing.QUICK, testing.TINY + overrides)
    return copy.deepcopy(backup.fingerprint(recipe))


def test_a_key_newer_than_the_backup_is_compared_with_its_default():
    old = _fingerprint()
    for key in ("lr_decay_start", "lr_decay_steps", "initial_weights"):
        del old["training"][key]  # a backup written before these keys existed
    assert backup._diff(old, _fingerprint()) is None  # defaults: what the old run did
    changed = backup._diff(old, _fingerprint("training.lr_decay_start=0",
                                             "training.lr_decay_steps=100"))
    assert changed == ("training.lr_decay_start", None, 0)
    new_model_key = _fingerprint()
    new_model_key["model"]["some_new_argument"] = 1  # model arguments: not compared
    assert backup._diff(old, new_model_key) is None
    assert backup._diff(_fingerprint(), _fingerprint("training.seed=3")) == (
        "training.seed", 0, 3)


def test_a_model_argument_left_out_is_compared_as_its_default():
    started = _fingerprint()  # the recipe leaves proj_pool / lambda_proj out: 1 / None
    assert "proj_pool" not in started["model"]
    assert backup._diff(started, _fingerprint("model.proj_pool=4")) == ("model.proj_pool", 1, 4)
    assert backup._diff(started, _fingerprint("model.lambda_proj=0.0")) == (
        "model.lambda_proj", None, 0.0)
    assert backup._diff(started, _fingerprint("model.proj_pool=1")) is None  # default written out
    assert backup._diff(_fingerprint("model.proj_pool=1"), started) is None
    assert backup._diff(_fingerprint("model.proj_pool=4"), started) == ("model.proj_pool", 4, 1)
    # an argument of the base class (SynthesisModel), found through the MRO walk
    assert backup._diff(started, _fingerprint("model.disc_scales=2")) == (
        "model.disc_scales", 1, 2)
