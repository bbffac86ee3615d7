"""`train(recipe)`: datasets + model + `compile` inside the strategy scope + `model.fit`.

Run layout under `out_dir` (the chief's; other workers of a multi-worker run write the same
tree under `out_dir/workers/worker<i>/`):

    recipe.yaml                 the resolved recipe
    history.csv                 CSVLogger, one row per epoch (appended on resume)
    logs/                       TensorBoard: train/ and validation/ scalars, images/ grids
    backup/                     resume state (training/backup.py; deleted after the final save)
    checkpoints/epochNNNN.weights.h5   periodic weights (`logging.checkpoint_every`)
    final.weights.h5, model.keras      the trained model

Synthesized images are research images, not diagnoses.
"""

import contextlib
import csv
import dataclasses
import io
import math
import pathlib
import warnings

import keras
import numpy as np
import tensorflow as tf

from usmr_tf.atomic import atomic_path, remove_stale_temps, write_text_atomic
from usmr_tf.errors import ConfigError, UsmrError
from usmr_tf.training import backup as backup_lib
from usmr_tf.training import callbacks as callbacks_lib
from usmr_tf.training import strategy as strategy_lib
from usmr_tf.training.recipe import dump_recipe


@dataclasses.dataclass
class Split:
    """Images of one split: `us`, `mr` unpaired; `mr_paired` (phantoms only) matches `us`."""

    us: np.ndarray
    mr: np.ndarray
    mr_paired: np.ndarray | None = None


@dataclasses.dataclass
class TrainResult:
    model: keras.Model
    history: keras.callbacks.History
    out_dir: pathlib.Path
    initial_epoch: int


# ----------------------------------------------------------------------------- data


def _split_indices(n, test_fraction, val_fraction, val_pick="tail"):
    """`(train, val)` indices: the last `test_fraction` is held out (paper: 80 % / 20 %); of
    the rest, `val_fraction` validates: its last part (`val_pick="tail"`, slices) or images
    evenly spaced over it (`"spread"`, index arrays), so that a split whose order follows
    its sources (HC18 then HC18-more, exam numbers) validates on all of them."""
    n_test = int(round(n * test_fraction))
    n_trainval = n - n_test
    n_val = int(round(n_trainval * val_fraction))
    if val_pick == "tail" or n_val == 0:
        return slice(0, n_trainval - n_val), slice(n_trainval - n_val, n_trainval)
    # the middle of each of n_val equal strides: distinct, first and last strides included
    val = ((np.arange(n_val) + 0.5) * n_trainval / n_val).astype(int)
    return np.setdiff1d(np.arange(n_trainval), val), val


def load_splits(data):
    """Returns `(train, val)` `Split`s for the recipe's `data` section (test split unused)."""
    if data["source"] == "phantoms":
        from usmr_tf.data.phantoms import unpaired_phantoms

        us, mr, mr_paired = unpaired_phantoms(
            data["n_us"], data["n_mr"], data["image_size"], seed=data["seed"]
        )
        us_tr, us_val = _split_indices(len(us), data["test_fraction"], data["val_fraction"],
                                       data["val_pick"])
        mr_tr, mr_val = _split_indices(len(mr), data["test_fraction"], data["val_fraction"],
                                       data["val_pick"])
        train = Split(us[us_tr], mr[mr_tr], mr_paired[us_tr])
        val = Split(us[us_val], mr[mr_val], mr_paired[us_val])
    else:  # `usmr prepare` already held out its 20 % "test" split; validation comes from "train"
        from usmr_tf.data.pipeline import as_images

        cache = pathlib.Path(data["cache_dir"]).expanduser()
        us, mr = (as_images(cache, name=name, split="train") for name in ("us", "mr"))
        us_tr, us_val = _split_indices(len(us), 0.0, data["val_fraction"], data["val_pick"])
        mr_tr, mr_val = _split_indices(len(mr), 0.0, data["val_fraction"], data["val_pick"])
        train, val = Split(us[us_tr], mr[mr_tr]), Split(us[us_val], mr[mr_val])
        if us.shape[1] != data["image_size"]:
            raise ConfigError(
                f"{cache}: cache holds {us.shape[1]}x{us.shape[2]} images but data.image_size "
                f"is {data['image_size']}"
            )
    if len(train.us) < 1 or len(train.mr) < 1:
        raise ConfigError("the training split is empty: use more images or smaller fractions")
    return train, val


def _dataset(split, batch_size, seed, shuffle_and_augment, augment=False, augment_mr=False):
    """An endless batch stream; `fit` bounds it with `steps_per_epoch` / `validation_steps`.

    tf.data autotuning is off: its model thread sleeps in doubling intervals (up to ~20 s) and
    an iterator's teardown (every validation pass, the end of `fit`) waits for that sleep. The
    input stays far faster than training (benchmarks/bench_data.py) without it.
    """
    from usmr_tf.data.pipeline import unpaired_dataset

    ds = unpaired_dataset(
        split.us, split.mr, batch_size, seed=seed, augment=augment and shuffle_and_augment,
        augment_mr=augment_mr and shuffle_and_augment,
        paired_mr=split.mr_paired, shuffle=shuffle_and_augment, repeat=True,
    )
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


# ----------------------------------------------------------------------------- model


def _optimizer(spec, key):
    spec = dict(spec)
    name = spec.pop("name")
    try:
        return keras.optimizers.get({"class_name": name, "config": spec})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"training.{key}: cannot build optimizer {name!r}: {exc}") from None


def _scheduled(spec, training, key):
    """`spec` with its learning rate under `training.lr_decay_*`'s schedule, when set."""
    if training.get("lr_decay_start") is None:
        return spec
    from usmr_tf.training.schedules import LinearDecayAfter

    rate = spec.get("learning_rate")
    if rate is None:  # the optimizer's own default rate
        rate = float(keras.ops.convert_to_numpy(
            _optimizer({"name": spec["name"]}, key).learning_rate))
    if not isinstance(rate, (int, float)) or isinstance(rate, bool):
        raise ConfigError("training.lr_decay_start needs a number as the optimizers' "
                          f"learning_rate, got {rate!r}")
    return {**spec, "learning_rate": LinearDecayAfter(
        rate, training["lr_decay_start"], training["lr_decay_steps"])}


def load_initial_weights(model, path):
    """`training.initial_weights`: the weights of another run of the same model. The
    optimizers keep their fresh state (a `.weights.h5` also holds its run's optimizer step
    counters, moments and rates; Keras loads them when their layout matches, e.g. without a
    learning-rate schedule on either side): they are put back after the load."""
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"training.initial_weights: {path}: no such file")
    optimizers = [opt for opt in (getattr(model, "generator_optimizer", None),
                                  getattr(model, "discriminator_optimizer", None))
                  if opt is not None]
    fresh = [[keras.ops.convert_to_numpy(v) for v in opt.variables] for opt in optimizers]
    try:
        with warnings.catch_warnings():  # optimizer layouts may differ: not loaded then
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            model.load_weights(str(path))
    except (ValueError, OSError, KeyError) as exc:
        raise ConfigError(f"training.initial_weights: {path}: not weights of this recipe's "
                          f"model ({str(exc).splitlines()[0][:200]})") from None
    for opt, values in zip(optimizers, fresh):
        for variable, value in zip(opt.variables, values):
            variable.assign(value)


def build_model(model_config, image_size):
    """`usmr_tf.models.registry.build_model` with recipe errors turned into `ConfigError`."""
    from usmr_tf.models import registry

    config = dict(model_config)
    name = config.pop("name")
    config.setdefault("image_size", image_size)
    try:
        return registry.build_model(name, **config)
    except UsmrError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo="/proc/cpuinfo"):
    """True / False when the CPU flags say whether bfloat16 math is native (AVX512_BF16 or
    AMX); None when they cannot be read (not Linux): then nothing is assumed."""
    try:
        text = pathlib.Path(cpuinfo).read_text()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    if not flags:
        return None
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_precision(policy, native_bf16=None):
    """`auto` -> `mixed_float16` on GPU; on CPU `mixed_bfloat16` where bfloat16 is native
    (or unknown), else float32 (emulated bfloat16 measured 6-8x slower a step on an AVX2-only
    CPU, docs/performance.md); None -> float32. An explicit `mixed_bfloat16` on a CPU without
    native bfloat16 is kept, with a warning."""
    if policy in (None, "float32"):
        return "float32"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16" if policy == "auto" else policy
    if policy not in ("auto", "mixed_bfloat16"):
        return policy
    native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
    if policy == "auto":
        return "float32" if native is False else "mixed_bfloat16"
    if native is False:
        warnings.warn("mixed_bfloat16 on a CPU without native bfloat16 (no AVX512_BF16/AMX): "
                      "it is emulated and several times slower than float32; set "
                      "training.mixed_precision=float32 (or auto)", stacklevel=2)
    return policy


@contextlib.contextmanager
def precision_policy(name):
    """Sets Keras' global dtype policy while models are built, then restores it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def compile_model(model, training):
    """Builds the two optimizers and compiles; call inside the strategy scope.

    Under `mixed_float16` the models wrap both optimizers in `LossScaleOptimizer` themselves
    (`compile(auto_scale_loss=True)`); `mixed_bfloat16` needs no loss scaling.
    """
    g_opt, d_opt = (_optimizer(_scheduled(training[key], training, key), key)
                    for key in ("generator_optimizer", "discriminator_optimizer"))
    model.compile(
        generator_optimizer=g_opt, discriminator_optimizer=d_opt, gan_loss=training["gan_loss"]
    )
    return model


def create_model(recipe, strategy):
    """Builds and compiles the recipe's model inside `strategy.scope()`.

    Model variables and both optimizers' slots are created in the scope (mirrored under
    `MirroredStrategy`), with the recipe's mixed-precision policy. Under a multi-worker
    strategy the keras-team/keras#20585 workaround is applied.
    """
    training, size = recipe["training"], recipe["data"]["image_size"]
    precision = resolve_precision(training["mixed_precision"])
    with precision_policy(precision), strategy.scope():
        model = build_model(recipe["model"], size)
        compile_model(model, training)
        if not model.built:
            model(tf.zeros([1, size, size, 1]))
    if strategy_lib.in_multi_worker_mode(strategy):
        strategy_lib.patch_for_multi_worker(model)
    return model


# ----------------------------------------------------------------------------- fit


def validation_callback(out, log, validation):
    """The `ValidationCallback` for a run: `validation` is `(us, real_mr, paired_mr or None)`."""
    from usmr_tf.training.validation import ValidationCallback

    us, real_mr, paired = validation
    return ValidationCallback(
        out, us, real_mr, log["validate_every"], paired_mr=paired,
        with_deformation=log["validate_deformation"],
        diversity_floor=log["best_diversity_floor"], with_realism=log["validate_realism"],
        realism_repeats=log["validate_realism_repeats"])


def _validation_set(val, train):
    """Validation US (the val split; all of train if val has < 2) and the SWD reference MR."""
    source = val if len(val.us) >= 2 else train
    real_mr = np.concatenate([train.mr, val.mr]) if len(val.mr) else train.mr
    return source.us, real_mr, source.mr_paired


def _callbacks(out, recipe, model_is_chief, preview, validation=None, backup=None):
    """The run's callbacks; `backup` (a `TrainingBackup`) comes last, after every writer."""
    log = recipe["logging"]
    resuming = backup is not None and backup.start.step > 0
    cbs = [
        # CSV first: its row for an epoch is on disk before that epoch's backup is (a resumed
        # run drops rows of epochs after its backup: `_truncate_history`).
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=resuming),
        keras.callbacks.TensorBoard(log_dir=str(out / "logs"), write_graph=False),
        callbacks_lib.TerminateOnNaN(),
    ]
    if model_is_chief and log["image_every"] and preview is not None:
        cbs.append(callbacks_lib.ImageSummaryCallback(
            out / "logs", preview.us, preview.mr_paired if preview.mr_paired is not None
            else preview.mr, every_n_epochs=log["image_every"]))
    if model_is_chief and log["validate_every"] and validation is not None:
        # Before CSVLogger: it adds val_diversity / val_swd to the epoch logs that CSV writes.
        cbs.insert(0, validation_callback(out, log, validation))
    if log["checkpoint_every"]:
        cbs.append(callbacks_lib.PeriodicCheckpoint(out / "checkpoints", log["checkpoint_every"]))
    if backup is not None:
        cbs.append(backup)
    return cbs


def _truncate_history(path, epochs):
    """Keeps the header and the rows of the first `epochs` epochs of a `history.csv` (a killed
    run may have written rows after its last backup, or half a row)."""
    if not path.is_file():
        return
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error):
        return
    if not rows or "epoch" not in rows[0]:
        return
    column, width = rows[0].index("epoch"), len(rows[0])
    kept = [rows[0]] + [r for r in rows[1:] if len(r) == width and r[column].isdigit()
                        and int(r[column]) < epochs]
    if len(kept) != len(rows):
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(kept)
        write_text_atomic(path, text.getvalue())


def _preview(val, train, n):
    source = val if len(val.us) >= 1 else train
    n = min(n, len(source.us), len(source.mr))
    return Split(source.us[:n], source.mr[:n],
                 None if source.mr_paired is None else source.mr_paired[:n])


def _save_final(model, out):
    """Writes `final.weights.h5` and `model.keras` via temp names (never half-written)."""
    for name, save in (("final.weights.h5", model.save_weights), ("model.keras", model.save)):
        try:
            with atomic_path(out / name, durable=True) as tmp:
                save(str(tmp))
        except OSError as exc:
            raise UsmrError(f"{out / name}: cannot write ({exc}); the run's backup is kept: "
                            "free space and run the same command again") from None


def train(recipe, out_dir, strategy=None):
    """Trains the model a validated recipe describes; resumes from `out_dir/backup` if present.

    A resumed run continues at the exact batch of its last backup (`training/backup.py`) and
    ends bit-identical to an uninterrupted one: weights, both optimizers, `history.csv`.

    Args:
        recipe: a dict from `load_recipe`.
        out_dir: run folder (created).
        strategy: a strategy name overriding `training.strategy`, or a `tf.distribute.Strategy`.

    Returns:
        `TrainResult`.
    """
    training, data, log = recipe["training"], recipe["data"], recipe["logging"]
    if strategy is None or isinstance(strategy, str):
        strategy = strategy_lib.make_strategy(strategy or training["strategy"])
    chief = strategy_lib.is_chief(strategy)
    out = pathlib.Path(out_dir)
    if not chief:
        out = out / "workers" / f"worker{strategy_lib.task_id(strategy)}"
    out.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(training["seed"])
    train_split, val_split = load_splits(data)
    batch = training["batch_size"]
    train_ds = _dataset(train_split, batch, training["seed"], True, augment=data["augment"],
                        augment_mr=data.get("augment_mr", False))
    steps = training["steps_per_epoch"] or max(1, len(train_split.us) // batch)
    val_ds, val_steps = None, None
    if len(val_split.us) and len(val_split.mr):
        val_ds = _dataset(val_split, batch, training["seed"], False)
        val_steps = training["validation_steps"] or max(1, math.ceil(len(val_split.us) / batch))

    model = create_model(recipe, strategy)

    # Every worker resumes from the chief's backup (a folder all workers must see); only the
    # chief writes it.
    backup_dir = pathlib.Path(out_dir) / "backup"
    start = backup_lib.restore(model, backup_dir, recipe, steps)
    if start.step == 0 and training["initial_weights"]:
        load_initial_weights(model, training["initial_weights"])
    dump_recipe(recipe, out / "recipe.yaml")
    for folder in (out, out / "checkpoints"):  # temp files of a killed run's writes
        remove_stale_temps(folder)
    _truncate_history(out / "history.csv", start.epoch)
    backup = backup_lib.TrainingBackup(backup_dir, recipe, steps, log["backup_every_steps"],
                                       start=start, write=chief)
    cbs = _callbacks(out, recipe, chief, _preview(val_split, train_split, log["n_images"]),
                     _validation_set(val_split, train_split), backup)
    history = keras.callbacks.History()
    if start.epoch < training["epochs"]:
        # Keras starts the training stream afresh in every `fit` (and keeps it across the
        # epochs of one): skip what the run consumed before its backup.
        if start.step:
            train_ds = train_ds.skip(start.step)
        try:
            history = model.fit(
                train_ds, epochs=training["epochs"], steps_per_epoch=steps,
                validation_data=val_ds, validation_steps=val_steps, callbacks=cbs,
                verbose=log["verbose"], shuffle=False, initial_epoch=start.epoch,
            )
        except FloatingPointError as exc:
            raise UsmrError(f"{exc}; the last backup before it is kept in {backup_dir}") from None
        except OSError as exc:
            raise UsmrError(f"{out}: cannot write ({exc}); the last backup is kept in "
                            f"{backup_dir}: free space and run the same command again") from None
    _save_final(model, out)
    if chief:
        backup_lib.discard(backup_dir)
    return TrainResult(model, history, out, start.epoch)
