"""Training recipes: YAML files merged over `DEFAULTS`, with `--set key=value` overrides.

A recipe has four sections:

- `model`: passed as keyword arguments to `usmr_tf.models.registry.build_model`
  (`name` picks the model: "ours", "ae", "gan", "cyclegan"). Its keys belong to the model,
  so they are checked by the model's constructor, not here.
- `data`: where the images come from. `source: phantoms` renders synthetic phantoms
  (`usmr_tf.data.phantoms`); `source: prepared` reads a slice cache written by
  `usmr prepare` (`cache_dir`). Phantoms are split 80/20 as in the paper (§3): 80 % for
  training + validation, 20 % held out for testing, never seen by `fit`.
- `training`: epochs, global batch size, optimizers, GAN loss form, mixed precision, seed.
- `logging`: how often image summaries and periodic checkpoints are written.

Every key outside `model` must be one of `DEFAULTS`; anything else is a `ConfigError`
naming the dotted key, so a typo never silently trains with a default.
"""

import copy
import os
import pathlib

import yaml

from usmr_tf.atomic import write_text_atomic
from usmr_tf.errors import ConfigError

DEFAULTS = {
    "name": None,
    "description": "",
    "model": {"name": "ours"},
    "data": {
        "source": "phantoms",  # "phantoms" | "prepared"
        "image_size": 128,
        "n_us": 400,  # phantoms only
        "n_mr": 400,  # phantoms only
        "cache_dir": None,  # prepared only: output of `usmr prepare`
        "test_fraction": 0.2,  # paper §3: 80 % train + validation, 20 % test
        "val_fraction": 0.1,  # of the 80 %
        "val_pick": "tail",  # "tail": the last val_fraction; "spread": evenly spaced over it
        "augment": True,
        "augment_mr": False,  # MR side only: bias field, intensity, noise, zoom (or options)
        "seed": 0,
    },
    "training": {
        "epochs": 50,
        "batch_size": 8,  # global batch, split across replicas
        "steps_per_epoch": None,  # None: one pass over the training split
        "validation_steps": None,
        "seed": 0,
        "gan_loss": "lsgan",
        "generator_optimizer": {
            "name": "adam", "learning_rate": 2e-4, "beta_1": 0.5, "beta_2": 0.999,
        },
        "discriminator_optimizer": {
            "name": "adam", "learning_rate": 2e-4, "beta_1": 0.5, "beta_2": 0.999,
        },
        "mixed_precision": None,  # None | "auto" | "mixed_bfloat16" | "mixed_float16"
        # CycleGAN's schedule (training/schedules.py), off by default (the paper's rate is
        # constant): both rates constant for `lr_decay_start` optimizer steps, then linearly
        # to 0 over `lr_decay_steps`
        "lr_decay_start": None,
        "lr_decay_steps": 0,
        # start from these weights (a `.weights.h5` of the same model, e.g. another run's
        # checkpoint) with fresh optimizers, instead of a random initialisation
        "initial_weights": None,
        "strategy": "default",  # "default" | "mirrored" | "multiworker"
    },
    "logging": {
        "image_every": 1,  # epochs between TensorBoard image grids (0: never)
        "n_images": 4,
        "checkpoint_every": 5,  # epochs between kept weight checkpoints (0: never)
        "backup_every_steps": 0,  # training steps between resume backups (0: after epochs only)
        # steps between validation metrics (diversity, SWD, ...; usmr_tf/training/validation.py)
        "validate_every": 0,  # 0: never
        "validate_deformation": False,  # also the (slow) deformation score
        # also the realism test (usmr_tf/metrics/realism.py); best.weights.h5 then = lowest
        # realism accuracy where the test resolves it, else lowest SWD (validation.better_than),
        # with diversity >= best_diversity_floor
        "validate_realism": False,
        # the realism test's repeats (other seeds; mean and sd, `realism_sd`): one test's
        # value moves by 0.01-0.10 (sd) with its seed (docs/metrics.md); each repeat ~3-5 s
        "validate_realism_repeats": 1,
        "best_diversity_floor": 0.5,  # best.weights.h5: lowest SWD with diversity >= this
        "verbose": "auto",  # Keras progress bar: "auto" | 0 | 1 | 2
    },
}

OPTIMIZERS = ("training.generator_optimizer", "training.discriminator_optimizer")
FREE_FORM = {"model", *OPTIMIZERS}
DATA_SOURCES = ("phantoms", "prepared")
VAL_PICKS = ("tail", "spread")  # data.val_pick: which part of the training split validates
STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = (None, "auto", "float32", "mixed_bfloat16", "mixed_float16")
GAN_LOSSES = ("lsgan", "bce")


def _merge(base, override, prefix, source):
    """Deep-merges `override` into a copy of `base`, refusing keys `base` does not have."""
    if not isinstance(override, dict):
        raise ConfigError(f"{source}: `{prefix or 'recipe'}` must be a mapping, got {override!r}")
    out = copy.deepcopy(base)
    for key, value in override.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if prefix in FREE_FORM:  # model / optimizer arguments: checked by their constructors
            out[key] = copy.deepcopy(value)
        elif key not in base:
            known = ", ".join(sorted(f"{prefix}.{k}" if prefix else k for k in base))
            raise ConfigError(f"{source}: unknown key `{dotted}` (known: {known})")
        elif isinstance(base[key], dict):
            if dotted in OPTIMIZERS and isinstance(value, dict) and value.get(
                "name", base[key].get("name")
            ) != base[key].get("name"):
                out[key] = copy.deepcopy(value)  # another optimizer: drop the old one's arguments
            else:
                out[key] = _merge(base[key], value, dotted, source)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text):
    """`"training.epochs=3"` -> `("training.epochs", 3)`; the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {exc}") from None
    return key, value


def _nest(dotted, value):
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def load_recipe(path=None, overrides=()):
    """Reads a recipe file (or only the defaults when `path` is None) and applies overrides.

    Args:
        path: YAML recipe file.
        overrides: iterable of `"dotted.key=value"` strings (the CLI's `--set`).

    Returns:
        A validated recipe `dict` (see `DEFAULTS`).
    """
    recipe = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = pathlib.Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: recipe file not found")
        try:
            loaded = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a valid YAML recipe: {exc}") from None
        if loaded is None:
            raise ConfigError(f"{path}: recipe is empty")
        recipe = _merge(recipe, loaded, "", str(path))
        if recipe["name"] is None:
            recipe["name"] = path.stem
    for text in overrides:
        key, value = parse_override(text)
        recipe = _merge(recipe, _nest(key, value), "", f"--set {key}")
    validate(recipe, source=str(path) if path else "recipe")
    return recipe


def _check(cond, source, message):
    if not cond:
        raise ConfigError(f"{source}: {message}")


def _is_int(value, minimum):
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def validate(recipe, source="recipe"):
    """Raises `ConfigError` for values that cannot be trained with."""
    model, data, train, log = recipe["model"], recipe["data"], recipe["training"], recipe["logging"]
    _check(isinstance(model, dict) and isinstance(model.get("name"), str), source,
           "`model.name` must be a model name such as ours, ae, gan, cyclegan")
    _check(data["source"] in DATA_SOURCES, source,
           f"`data.source` must be one of {DATA_SOURCES}, got {data['source']!r}")
    if data["source"] == "prepared":
        _check(isinstance(data["cache_dir"], (str, os.PathLike)), source,
               "`data.cache_dir` must name the folder written by `usmr prepare`")
    else:
        for key in ("n_us", "n_mr"):
            _check(_is_int(data[key], 2), source, f"`data.{key}` must be an integer >= 2")
    _check(_is_int(data["image_size"], 8), source, "`data.image_size` must be an integer >= 8")
    for key in ("test_fraction", "val_fraction"):
        value = data[key]
        _check(isinstance(value, (int, float)) and not isinstance(value, bool)
               and 0 <= value < 1, source, f"`data.{key}` must be in [0, 1), got {value!r}")
    _check(data["val_pick"] in VAL_PICKS, source,
           f"`data.val_pick` must be one of {VAL_PICKS}, got {data['val_pick']!r}")
    _check(isinstance(data["augment_mr"], (bool, dict)), source,
           "`data.augment_mr` must be true, false or a mapping of augment.augment_mr options")
    for key in ("epochs", "batch_size"):
        _check(_is_int(train[key], 1), source, f"`training.{key}` must be an integer >= 1")
    for key in ("steps_per_epoch", "validation_steps"):
        _check(train[key] is None or _is_int(train[key], 1), source,
               f"`training.{key}` must be null or an integer >= 1")
    _check(_is_int(train["seed"], 0), source, "`training.seed` must be an integer >= 0")
    _check(train["gan_loss"] in GAN_LOSSES, source,
           f"`training.gan_loss` must be one of {GAN_LOSSES}, got {train['gan_loss']!r}")
    _check(train["mixed_precision"] in PRECISIONS, source,
           f"`training.mixed_precision` must be one of {PRECISIONS}, got {train['mixed_precision']!r}")
    _check(train["strategy"] in STRATEGIES, source,
           f"`training.strategy` must be one of {STRATEGIES}, got {train['strategy']!r}")
    _check(train["lr_decay_start"] is None or _is_int(train["lr_decay_start"], 0), source,
           "`training.lr_decay_start` must be null or an integer >= 0")
    _check(_is_int(train["lr_decay_steps"], 0), source,
           "`training.lr_decay_steps` must be an integer >= 0")
    _check((train["lr_decay_start"] is None) == (train["lr_decay_steps"] == 0), source,
           "`training.lr_decay_start` and `training.lr_decay_steps` go together (both set, "
           "or lr_decay_start null and lr_decay_steps 0)")
    _check(train["initial_weights"] is None or isinstance(train["initial_weights"],
                                                          (str, os.PathLike)), source,
           "`training.initial_weights` must be null or the path of a .weights.h5 file")
    for key in ("generator_optimizer", "discriminator_optimizer"):
        _check(isinstance(train[key], dict) and isinstance(train[key].get("name"), str), source,
               f"`training.{key}` must be a mapping with a `name` (e.g. adam)")
    for key in ("image_every", "checkpoint_every", "validate_every", "backup_every_steps"):
        _check(_is_int(log[key], 0), source, f"`logging.{key}` must be an integer >= 0")
    for key in ("validate_deformation", "validate_realism"):
        _check(isinstance(log[key], bool), source, f"`logging.{key}` must be true or false")
    _check(isinstance(log["best_diversity_floor"], (int, float))
           and not isinstance(log["best_diversity_floor"], bool)
           and 0 <= log["best_diversity_floor"], source,
           "`logging.best_diversity_floor` must be a number >= 0")
    _check(_is_int(log["n_images"], 1), source, "`logging.n_images` must be an integer >= 1")
    _check(_is_int(log["validate_realism_repeats"], 1), source,
           "`logging.validate_realism_repeats` must be an integer >= 1")
    _check(log["verbose"] in ("auto", 0, 1, 2), source, "`logging.verbose` must be auto, 0, 1 or 2")
    return recipe


def dump_recipe(recipe, path):
    """Writes the resolved recipe next to the run's outputs (temp file, then rename)."""
    write_text_atomic(path, yaml.safe_dump(recipe, sort_keys=False))
