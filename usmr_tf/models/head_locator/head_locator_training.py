"""``usmr train --recipe recipes/head_locator_hc18.yaml``: the head locator with ``model.fit``.

A locator recipe has ``task: locate`` and its own sections (``LOCATOR_DEFAULTS``): ``model``
(``HeadLocatorBackbone`` options and the input frame), ``data`` (HC18 folders, negatives, the
MR volumes the MR negatives come from), ``training``. Unknown keys are a ``ConfigError``, as
in synthesis recipes; ``--set key=value`` overrides work the same way.

Run layout under ``out_dir``: ``recipe.yaml``, ``split.json`` (the exam split, file names),
``history.csv``, ``logs/`` (TensorBoard), ``backup/`` (``keras.callbacks.BackupAndRestore``:
a killed run started again with the same ``--out`` resumes from its last finished epoch, and
a finished one given more ``training.epochs`` continues),
``best.weights.h5`` (lowest validation loss), ``final.weights.h5``.

Two stages (``model.stage``): ``locate`` (default) trains the segmenter of the letterboxed
first and zoom passes on whole images with negatives; ``refine`` trains the refinement pass's
segmenter on canonical frames (``model.fill``, ``data.jitters``: see
``head_locator_preprocessor.refiner_examples``), usually fine-tuned from the first pass
(``training.initial_weights`` may name a locator export as well as a ``.weights.h5``; a
refine run reads an export's refiner where it has one, to train a shipped refiner further), and
``usmr export`` then writes one locator whose passes are ``model.first_pass`` (a locator
export) and this refiner.
"""

import copy
import json
import pathlib

import keras
import numpy as np
import tensorflow as tf
import yaml

from usmr_tf.atomic import write_text_atomic
from usmr_tf.errors import ConfigError

LOCATOR_DEFAULTS = {
    "task": "locate",
    "name": None,
    "description": "",
    "model": {"base_filters": 24, "depth": 4, "stem_stride": 2, "height": 224, "width": 320,
              "tail_filters": 0,  # > 0: a full-resolution tail (head_locator_backbone)
              "stage": "locate",  # or "refine": the refinement pass (module docstring)
              "fill": 0.72,  # refine: the first ellipse's major axis / the frame's width
              "first_pass": None},  # refine: the locator export it refines (for usmr export)
    "data": {
        "data_root": "../shared/data",
        "folders": ["us/hc18", "us/hc18_more"],
        "test_fraction": 0.2,
        "val_fraction": 0.1,
        "seed": 0,
        "negatives": 160,  # training inputs with no fetal head (empty mask)
        "mr_volumes": [],  # globs under data_root for the MR-slice negatives
        "jitters": 8,  # refine: canonical frames per training image
    },
    "training": {
        "epochs": 40,
        "steps_per_epoch": 25,
        "batch_size": 8,
        "learning_rate": 1.0e-3,
        "min_learning_rate": 1.0e-5,
        "seed": 0,
        "mixed_precision": "float32",
        "initial_weights": None,  # fine-tune from a .weights.h5 or a locator export
        "verbose": "auto",
    },
}


def is_locator_recipe(path):
    try:
        loaded = yaml.safe_load(pathlib.Path(path).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(loaded, dict) and loaded.get("task") == "locate"


def load_locator_recipe(path, overrides=()):
    """Locator recipe: defaults, the YAML file, ``--set`` overrides; unknown keys refused."""
    from usmr_tf.training.recipe import _merge, _nest, parse_override

    path = pathlib.Path(path)
    loaded = yaml.safe_load(path.read_text())
    recipe = _merge(copy.deepcopy(LOCATOR_DEFAULTS), loaded, "", str(path))
    for text in overrides:
        key, value = parse_override(text)
        recipe = _merge(recipe, _nest(key, value), "", f"--set {key}")
    recipe["name"] = recipe["name"] or path.stem
    train = recipe["training"]
    for key in ("epochs", "steps_per_epoch", "batch_size"):
        if not (isinstance(train[key], int) and train[key] >= 1):
            raise ConfigError(f"{path}: `training.{key}` must be an integer >= 1")
    for key in ("learning_rate", "min_learning_rate"):
        if isinstance(train[key], bool) or not isinstance(train[key], (int, float)) \
                or not train[key] > 0:
            raise ConfigError(f"{path}: `training.{key}` must be a number > 0 (YAML reads 3e-4 "
                              f"as text: write 3.0e-4), got {train[key]!r}")
    model = recipe["model"]
    tail = model["tail_filters"]
    if isinstance(tail, bool) or not isinstance(tail, int) or tail < 0:
        raise ConfigError(f"{path}: `model.tail_filters` must be an integer >= 0, got {tail!r}")
    if tail and model["stem_stride"] <= 1:
        raise ConfigError(f"{path}: `model.tail_filters` needs `model.stem_stride` > 1")
    if model["stage"] not in ("locate", "refine"):
        raise ConfigError(f"{path}: `model.stage` must be locate or refine, got {model['stage']!r}")
    if model["stage"] == "refine":
        fill, jitters = model["fill"], recipe["data"]["jitters"]
        if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not 0.2 <= fill <= 0.9:
            raise ConfigError(f"{path}: `model.fill` must be a number in [0.2, 0.9], got {fill!r}")
        if isinstance(jitters, bool) or not isinstance(jitters, int) or jitters < 1:
            raise ConfigError(f"{path}: `data.jitters` must be an integer >= 1, got {jitters!r}")
        if not model["first_pass"]:
            raise ConfigError(f"{path}: a refine recipe needs `model.first_pass` (the locator "
                              "export it refines, e.g. saved_models/fetal_head_locator/1)")
    if recipe["model"]["height"] % (recipe["model"]["stem_stride"] * 2 ** recipe["model"]["depth"]) \
            or recipe["model"]["width"] % (recipe["model"]["stem_stride"] * 2 ** recipe["model"]["depth"]):
        raise ConfigError(f"{path}: model.height and model.width must be multiples of "
                          "stem_stride * 2**depth")
    return recipe


def build_locator(model_config, dtype=None):
    from usmr_tf.models.head_locator.head_locator import HeadLocator
    from usmr_tf.models.head_locator.head_locator_backbone import HeadLocatorBackbone

    cfg = {k: v for k, v in model_config.items() if k not in ("stage", "fill", "first_pass")}
    height, width = cfg.pop("height"), cfg.pop("width")
    backbone = HeadLocatorBackbone(input_shape=(height, width, 1), dtype=dtype, **cfg)
    model = HeadLocator(backbone, height=height, width=width, dtype=dtype)
    model(tf.zeros([1, height, width, 1]))
    return model


def _resolve(data):
    root = pathlib.Path(data["data_root"]).expanduser()
    folders = [root / f for f in data["folders"]]
    volumes = sorted({p for pattern in data["mr_volumes"] for p in root.glob(pattern)})
    return folders, volumes


def locator_split(recipe):
    from usmr_tf.models.head_locator.head_locator_preprocessor import split_examples

    data = recipe["data"]
    folders, _ = _resolve(data)
    return split_examples(folders, data["test_fraction"], data["val_fraction"], data["seed"])


def train_locator(recipe, out_dir):
    """Trains (or resumes) the locator of a ``task: locate`` recipe; returns the model."""
    from usmr_tf.models.head_locator.head_locator import dice_bce_loss, dice_metric
    from usmr_tf.models.head_locator.head_locator_image_converter import (
        HeadLocatorCanonicalConverter, HeadLocatorImageConverter)
    from usmr_tf.models.head_locator.head_locator_preprocessor import (
        augment_frame, augment_pair, hc18_examples, negative_examples, refiner_examples,
        training_dataset)
    from usmr_tf.training.recipe import dump_recipe

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_recipe(recipe, out / "recipe.yaml")
    data, train, model_cfg = recipe["data"], recipe["training"], recipe["model"]
    split = locator_split(recipe)
    write_text_atomic(out / "split.json", json.dumps(
        {k: [str(p) for p, _ in v] for k, v in split.items()}, indent=1) + "\n")
    _, volumes = _resolve(data)
    augment_fn = augment_pair
    if model_cfg["stage"] == "refine":
        canonical = HeadLocatorCanonicalConverter(model_cfg["height"], model_cfg["width"],
                                                  model_cfg["fill"])
        x_tr, y_tr = refiner_examples(split["train"], canonical, data["jitters"], data["seed"])
        x_va, y_va = refiner_examples(split["val"], canonical, 2, data["seed"] + 1)
        x_va, y_va = x_va.astype(np.float32), y_va.astype(np.float32)
        augment_fn = augment_frame
    else:
        converter = HeadLocatorImageConverter(model_cfg["height"], model_cfg["width"])
        x_tr, y_tr = hc18_examples(split["train"], converter)
        x_va, y_va = hc18_examples(split["val"], converter)
    n_neg = int(data["negatives"]) if model_cfg["stage"] == "locate" else 0
    if n_neg:
        xn, yn = negative_examples(n_neg, converter, seed=data["seed"], mr_volumes=volumes)
        n_val_neg = max(1, n_neg // 8)
        x_tr, y_tr = np.concatenate([x_tr, xn[n_val_neg:]]), np.concatenate([y_tr, yn[n_val_neg:]])
        x_va, y_va = np.concatenate([x_va, xn[:n_val_neg]]), np.concatenate([y_va, yn[:n_val_neg]])
    keras.utils.set_random_seed(train["seed"])
    keras.mixed_precision.set_global_policy(train["mixed_precision"])
    model = build_locator(model_cfg)
    if train["initial_weights"]:
        initial = pathlib.Path(train["initial_weights"]).expanduser()
        if initial.is_dir():  # a locator export's weights, by layer name
            from usmr_tf.models.head_locator.head_locator_export import (
                assign_from_export, export_has_refiner)

            # A refine run starts from the export's refiner where it has one (fine-tuning a
            # shipped refiner further), else from its first pass (as version 2 was made).
            part = ("refiner" if model_cfg["stage"] == "refine" and export_has_refiner(initial)
                    else "first_pass")
            # A model with a full-resolution tail may start from one without it (new tail).
            assign_from_export(model, initial, part=part,
                               new_tail=bool(model_cfg["tail_filters"]))
        else:
            model.load_weights(str(initial))
    total = train["epochs"] * train["steps_per_epoch"]
    schedule = keras.optimizers.schedules.CosineDecay(
        train["learning_rate"], total, alpha=train["min_learning_rate"] / train["learning_rate"])
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=dice_bce_loss,
                  metrics=[dice_metric])
    ds = training_dataset(x_tr, y_tr, train["batch_size"], seed=train["seed"],
                          augment_fn=augment_fn)
    val = tf.data.Dataset.from_tensor_slices((x_va, y_va)).batch(train["batch_size"])
    callbacks = [
        # Kept after the last epoch: the same --out with more epochs continues the run.
        keras.callbacks.BackupAndRestore(str(out / "backup"), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(out / "best.weights.h5"), monitor="val_loss",
                                        save_best_only=True, save_weights_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
    ]
    model.fit(ds, validation_data=val, epochs=train["epochs"],
              steps_per_epoch=train["steps_per_epoch"], callbacks=callbacks,
              verbose=train["verbose"])
    model.save_weights(str(out / "final.weights.h5"))
    keras.mixed_precision.set_global_policy("float32")
    return model
