"""`train()` / `create_model()` in process: MirroredStrategy on 2 logical CPUs, mixed precision."""

import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.training import strategy as strategy_lib
from usmr_tf.training import testing, trainer
from usmr_tf.training.recipe import load_recipe

RECIPES = pathlib.Path(__file__).resolve().parents[2] / "recipes"

SGD = ("training.generator_optimizer={name: sgd, learning_rate: 0.5}",
       "training.discriminator_optimizer={name: sgd, learning_rate: 0.5}")


def _recipe(*extra):
    return load_recipe(testing.QUICK, testing.TINY + extra)


def _replica_values(variable):
    tf_var = getattr(variable, "_value", variable)
    return [np.asarray(v) for v in getattr(tf_var, "values", [tf_var])]


def test_val_pick_tail_is_the_last_part_and_spread_covers_the_split():
    """`data.val_pick`: "tail" (default) keeps the old contiguous split; "spread" validates on
    images evenly spaced over train + validation, disjoint from training, same count."""
    assert trainer._split_indices(100, 0.2, 0.1) == (slice(0, 72), slice(72, 80))
    train, val = trainer._split_indices(100, 0.2, 0.1, "spread")
    assert len(val) == 8 and len(np.unique(val)) == 8 and len(train) == 72
    assert not set(train) & set(val) and set(train) | set(val) == set(range(80))
    assert val.min() < 10 and val.max() >= 70  # both ends of the 80 train + val images
    np.testing.assert_array_equal(np.diff(val), 10)
    assert trainer._split_indices(10, 0.0, 0.0, "spread") == (slice(0, 10), slice(10, 10))


def test_load_splits_validates_on_the_spread_images():
    tail_train, tail_val = trainer.load_splits(_recipe()["data"])
    data = _recipe("data.val_pick=spread")["data"]
    train, val = trainer.load_splits(data)
    for name in ("us", "mr"):
        ordered = np.concatenate([getattr(tail_train, name), getattr(tail_val, name)])
        _, idx = trainer._split_indices(len(ordered), 0.0, data["val_fraction"], "spread")
        np.testing.assert_array_equal(getattr(val, name), ordered[idx])
        np.testing.assert_array_equal(getattr(train, name), np.delete(ordered, idx, axis=0))
        assert not np.array_equal(getattr(val, name), getattr(tail_val, name))


def test_mirrored_step_equals_single_device_step():
    """2 replicas x 2 images == 1 device x 4 images after one SGD step (loss scaling is right)."""
    mirrored = strategy_lib.make_strategy("mirrored")
    if mirrored.num_replicas_in_sync != 2:
        pytest.skip("needs the 2 logical CPUs made by conftest.py")
    recipe = _recipe(*SGD, "training.batch_size=4")
    train_split, _ = trainer.load_splits(recipe["data"])
    batch = next(iter(trainer._dataset(train_split, 4, 0, False)))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()

    keras.utils.set_random_seed(0)
    single = trainer.create_model(recipe, tf.distribute.get_strategy())
    keras.utils.set_random_seed(0)
    replicated = trainer.create_model(recipe, mirrored)
    initial = single.get_weights()
    replicated.set_weights(initial)

    h1 = single.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False).history
    h2 = replicated.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False).history

    moved = max(np.abs(a - b).max() for a, b in zip(single.get_weights(), initial))
    assert moved > 1e-3  # the step really changed the weights
    assert len(single.trainable_variables) == len(replicated.trainable_variables)
    for v1, v2 in zip(single.trainable_variables, replicated.trainable_variables):
        replicas = _replica_values(v2)
        assert len(replicas) == 2, v2.path
        np.testing.assert_array_equal(replicas[0], replicas[1], err_msg=v2.path)
        np.testing.assert_allclose(replicas[0], np.asarray(v1), atol=1e-5, rtol=1e-4,
                                   err_msg=v2.path)
    for key in ("loss", "g_loss", "d_loss"):
        if key in h1:
            np.testing.assert_allclose(h2[key], h1[key], rtol=1e-4, err_msg=key)


def test_mixed_bfloat16_trains_on_cpu(tmp_path):
    recipe = _recipe("training.mixed_precision=mixed_bfloat16", "training.epochs=1",
                     "logging.image_every=1")
    result = trainer.train(recipe, tmp_path / "run")
    assert result.model.dtype_policy.name == "mixed_bfloat16"
    assert any(v.dtype == "float32" for v in result.model.trainable_variables)
    losses = result.history.history["loss"]
    assert losses and np.all(np.isfinite(losses))
    assert keras.config.dtype_policy().name == "float32"  # global policy restored
    images = testing.read_image_summaries(tmp_path / "run" / "logs")
    assert list(images) == [0]
    assert len(images[0]) == 2 and images[0][0].shape == (32, 4 * 32, 1)  # US|recon|synth|MR


def test_resolve_precision():
    assert trainer.resolve_precision(None) == "float32"
    gpu = bool(tf.config.list_logical_devices("GPU"))
    assert trainer.resolve_precision("auto", native_bf16=True) == (
        "mixed_float16" if gpu else "mixed_bfloat16")
    if not gpu:  # emulated bfloat16 is slower than float32: auto picks float32
        assert trainer.resolve_precision("auto", native_bf16=False) == "float32"
        with pytest.warns(UserWarning, match="without native bfloat16"):
            assert trainer.resolve_precision("mixed_bfloat16", native_bf16=False) == \
                "mixed_bfloat16"


def test_cpu_bf16_flags_are_read(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu avx2 fma avx512f avx512_bf16\n")
    assert trainer.cpu_has_native_bf16(info) is True
    info.write_text("processor : 0\nflags : fpu avx2 fma\n")
    assert trainer.cpu_has_native_bf16(info) is False
    assert trainer.cpu_has_native_bf16(tmp_path / "missing") is None


def test_lr_decay_follows_the_cycle_gan_schedule_through_fit(tmp_path):
    # Constant for 2 optimizer steps, then linearly to 0 over 4: after 4 steps half the rate.
    recipe = _recipe("training.epochs=2", "training.lr_decay_start=2",
                     "training.lr_decay_steps=4", "logging.image_every=0")
    result = trainer.train(recipe, tmp_path / "run")
    for opt in (result.model.generator_optimizer, result.model.discriminator_optimizer):
        assert int(opt.iterations.numpy()) == 4
        rate = float(keras.ops.convert_to_numpy(opt.learning_rate))
        np.testing.assert_allclose(rate, 0.5 * 2e-4, rtol=1e-5)
    from usmr_tf.training.schedules import LinearDecayAfter

    schedule = LinearDecayAfter(1.0, 2, 4)
    assert [float(schedule(t)) for t in (0, 2, 3, 6, 9)] == [1.0, 1.0, 0.75, 0.0, 0.0]
    assert LinearDecayAfter.from_config(schedule.get_config()).get_config() == \
        schedule.get_config()
    # A spec without a learning rate decays from its optimizer's own default (SGD: 0.01).
    spec = trainer._scheduled({"name": "sgd"}, {"lr_decay_start": 0, "lr_decay_steps": 10},
                              "generator_optimizer")
    assert spec["learning_rate"].initial_learning_rate == pytest.approx(0.01)


def test_initial_weights_start_a_run_from_another_runs_weights(tmp_path):
    first = trainer.train(_recipe("training.epochs=1", "logging.image_every=0"),
                          tmp_path / "a")
    start = tmp_path / "a" / "final.weights.h5"
    # Learning rates 0: the second run's trainable weights stay the ones it started from.
    frozen = ("training.generator_optimizer={name: adam, learning_rate: 0.0}",
              "training.discriminator_optimizer={name: adam, learning_rate: 0.0}")
    second = trainer.train(_recipe("training.epochs=1", "logging.image_every=0",
                                   f"training.initial_weights={start}", "training.seed=7",
                                   *frozen), tmp_path / "b")
    for mine, theirs in zip(second.model.trainable_weights, first.model.trainable_weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine),
                                      keras.ops.convert_to_numpy(theirs))
    for opt in (second.model.generator_optimizer, second.model.discriminator_optimizer):
        assert int(opt.iterations.numpy()) == 2  # fresh: its own 2 steps, not 2 + the file's
    with pytest.raises(trainer.ConfigError, match="no such file"):
        trainer.train(_recipe(f"training.initial_weights={tmp_path / 'nope.h5'}"),
                      tmp_path / "c")
    other = _recipe("training.epochs=1", "model.base_filters=8",
                    f"training.initial_weights={start}")
    with pytest.raises(trainer.ConfigError, match="not weights of this recipe's model"):
        trainer.train(other, tmp_path / "d")


def test_validation_callback_follows_the_recipes_realism_settings(tmp_path):
    recipe = load_recipe(RECIPES / "phantom_quick.yaml",
                         ["logging.validate_every=5", "logging.validate_realism=true",
                          "logging.validate_realism_repeats=3"])
    us = np.zeros((4, 16, 16, 1), np.float32)
    callback = trainer.validation_callback(tmp_path, recipe["logging"], (us, us, None))
    assert callback.with_realism and callback.realism_repeats == 3
    assert callback.every_n_steps == 5
    plain = trainer.validation_callback(tmp_path, load_recipe(
        RECIPES / "phantom_quick.yaml", ["logging.validate_every=5"])["logging"], (us, us, None))
    assert not plain.with_realism and plain.realism_repeats == 1
