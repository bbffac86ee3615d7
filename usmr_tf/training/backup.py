"""Step-exact, atomic training backups for `usmr train` (in place of Keras' `BackupAndRestore`).

A run killed at any moment and started again with the same `--out` ends bit-identical to a run
that was never interrupted. Keras 3.15's `keras.callbacks.BackupAndRestore` does not give that,
for four reasons found in this project's runs (see docs/training.md):

1. It restores the weights and the epoch number but not the position of the `tf.data`
   iterator: the resumed run starts the (seeded, endless) training stream from its first batch
   again, so every epoch after a resume trains on other batches (keras-team/keras#22490 adds
   iterator state for Grain datasets only). Here the backup records how many training batches
   were consumed and the resumed run skips exactly that many. (Validation needs nothing:
   `evaluate` restarts its iterator every epoch.)
2. Its batch-level `save_freq` records the batch but resumes at the start of that epoch, with
   weights that already saw part of it. Here a mid-epoch backup resumes mid-epoch (the first
   epoch is cut short, see `TrainingBackup`) with the epoch's running loss means restored.
3. Writes are not atomic: the weights file is rewritten in place and `training_metadata.json`
   after it, so a kill between the two (or inside the HDF5 write) leaves weights of one epoch
   with the number of another, or a truncated file. Here every backup is a new weights file
   written under a temp name, and `state.json` (renamed into place last, fsynced) is the single
   commit point; the previous backup is kept until a newer one is committed.
4. `keras.random.SeedGenerator` states are not in `.weights.h5` files (Keras' `save_weights`
   stores `trainable + non_trainable` variables only); they are kept in `state.json`.

Layout of `backup/`:

    state.json                   the committed position, weights file name, the previous backup
    stepNNNNNNNNN.weights.h5     model + both optimizers (`model.save_weights`)

Synthesized images are research images, not diagnoses.
"""

import dataclasses
import json
import pathlib

import keras
import numpy as np

from usmr_tf.atomic import atomic_path, fsync_dir, remove_stale_temps, write_text_atomic
from usmr_tf.errors import ConfigError, UsmrError
from usmr_tf.training.recipe import DEFAULTS

FORMAT = "usmr-tf/training-backup/1"
STATE = "state.json"
# Keras BackupAndRestore files of runs started before this module (epoch-level resume only).
KERAS_METADATA, KERAS_WEIGHTS = "training_metadata.json", "latest.weights.h5"


@dataclasses.dataclass
class Position:
    """Where a run stands: `epoch` epochs finished and `batch` batches of the next one."""

    epoch: int = 0
    batch: int = 0
    step: int = 0  # training batches consumed since the start
    trackers: list | None = None  # metric variable values, for a mid-epoch position
    source: str | None = None  # the weights file it was restored from

    @property
    def mid_epoch(self):
        return self.batch > 0


def has_backup(backup_dir):
    backup_dir = pathlib.Path(backup_dir)
    return (backup_dir / STATE).exists() or (backup_dir / KERAS_METADATA).exists()


def _metric_variables(model):
    return [v for m in model.metrics for v in m.variables]


def _seed_generators(model):
    """`{state variable path: SeedGenerator}` of every layer of `model` (its own included)."""
    found = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):  # noqa: SLF001
        for generator in getattr(layer, "_seed_generators", []):
            found.setdefault(generator.state.path, generator)
    return found


def _as_list(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable)).tolist()


def fingerprint(recipe):
    """The recipe sections a backup must match to be resumed (not `epochs`, not `strategy`,
    not `logging`)."""
    training = {k: v for k, v in recipe["training"].items() if k not in ("epochs", "strategy")}
    return {"model": recipe["model"], "data": recipe["data"], "training": training}


def _with_model_defaults(model):
    """A recipe's `model` section with every left-out constructor argument at its default."""
    from usmr_tf.models.registry import model_defaults

    defaults = model_defaults(model.get("name"))
    defaults.pop("image_size", None)  # set from data.image_size when the recipe leaves it out
    return {**json.loads(json.dumps(defaults, default=str)), **model}


def _diff(a, b, prefix=""):
    """The first `(dotted key, old, new)` where `b` differs from `a`. A `data` or `training`
    key only `b` has (a recipe key added by a newer usmr-tf, absent from an older run's
    backup) is compared with its default, the value the older run trained with; a model
    argument that one side leaves out is compared as its constructor default (so a run
    started without `model.proj_pool` cannot resume with `proj_pool=4`, and one started
    with the default written out can resume without it). `image_size` follows the data."""
    if prefix == "model" and isinstance(a, dict) and isinstance(b, dict):
        a, b = _with_model_defaults(a), _with_model_defaults(b)
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a, key=str):
            found = _diff(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
            if found:
                return found
        section = prefix.split(".")[0]
        if section in ("data", "training"):
            defaults = DEFAULTS[section]
            for part in prefix.split(".")[1:]:
                defaults = defaults.get(part, {}) if isinstance(defaults, dict) else {}
            for key in sorted(set(b) - set(a), key=str):
                if key in defaults and b[key] != defaults[key]:
                    return (f"{prefix}.{key}", defaults[key], b[key])
        return None
    return None if a == b else (prefix, a, b)


def read_state(backup_dir):
    """The committed `state.json` of `backup_dir` (None without one); `UsmrError` if unreadable."""
    path = pathlib.Path(backup_dir) / STATE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsmrError(f"{path}: cannot read the training backup ({exc}); move the backup "
                        "folder away to start the run again from scratch") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsmrError(f"{path}: not a usmr-tf training backup (format "
                        f"{state.get('format') if isinstance(state, dict) else None!r})")
    return state


def _load_entry(model, backup_dir, entry):
    path = pathlib.Path(backup_dir) / entry["weights"]
    if not path.is_file():
        raise OSError(f"{path}: missing")
    model.load_weights(str(path))
    generators = _seed_generators(model)
    for name, value in (entry.get("seed_states") or {}).items():
        if name in generators:
            generators[name].state.assign(np.asarray(value, generators[name].state.dtype))
    return Position(epoch=int(entry["epoch"]), batch=int(entry["batch"]),
                    step=int(entry["step"]),
                    trackers=entry.get("trackers"), source=str(path))


def restore(model, backup_dir, recipe, steps_per_epoch):
    """Loads the newest loadable backup of `backup_dir` into `model`; returns its `Position`
    (epoch 0 when there is none). Falls back to the previous backup when the newest cannot
    be read; raises `UsmrError` naming the files when neither can, and `ConfigError` when the
    backup was made with another recipe."""
    backup_dir = pathlib.Path(backup_dir)
    state = read_state(backup_dir)
    if state is None:
        return _restore_keras(model, backup_dir, steps_per_epoch)
    changed = _diff(state.get("fingerprint"), json.loads(json.dumps(fingerprint(recipe))))
    if changed:
        key, old, new = changed
        raise ConfigError(
            f"{backup_dir}: the run was started with {key}={old!r}, the recipe now says "
            f"{new!r}; resume with the same recipe (only training.epochs, training.strategy "
            "and logging may change) or use another --out")
    if int(state["steps_per_epoch"]) != steps_per_epoch:
        raise ConfigError(f"{backup_dir}: the run was started with {state['steps_per_epoch']} "
                          f"steps per epoch, now {steps_per_epoch}; use another --out")
    errors = []
    for entry in (state, state.get("previous")):
        if not entry:
            continue
        try:
            return _load_entry(model, backup_dir, entry)
        except (OSError, ValueError, KeyError) as exc:
            errors.append(f"{entry.get('weights')}: {exc}")
    raise UsmrError(f"{backup_dir}: no loadable training backup ({'; '.join(errors)}); move the "
                    "backup folder away to start the run again from scratch")


def _restore_keras(model, backup_dir, steps_per_epoch):
    """Epoch-level resume from a Keras `BackupAndRestore` folder of an older usmr-tf."""
    metadata, weights = backup_dir / KERAS_METADATA, backup_dir / KERAS_WEIGHTS
    if not (metadata.exists() and weights.exists()):
        return Position()
    try:
        epoch = int(json.loads(metadata.read_text())["epoch"])
        model.load_weights(str(weights))
    except (OSError, ValueError, KeyError) as exc:
        raise UsmrError(f"{backup_dir}: cannot resume from the Keras backup ({exc}); move it "
                        "away to start again from scratch") from None
    return Position(epoch=epoch, step=epoch * steps_per_epoch, source=str(weights))


def discard(backup_dir):
    """Removes a finished run's backup: `state.json` first (the commit point), then the rest."""
    backup_dir = pathlib.Path(backup_dir)
    for name in (STATE, KERAS_METADATA):
        (backup_dir / name).unlink(missing_ok=True)
    fsync_dir(backup_dir)
    if backup_dir.is_dir():
        for entry in backup_dir.iterdir():
            if entry.is_file():
                entry.unlink(missing_ok=True)
        backup_dir.rmdir()


class TrainingBackup(keras.callbacks.Callback):
    """Backs up the run every `every_n_steps` training batches and after every epoch.

    Args:
        backup_dir: the folder (`state.json` + weights files).
        recipe: the run's recipe (its `fingerprint` is stored).
        steps_per_epoch: as given to `fit`.
        every_n_steps: also back up after every n-th training batch (counted from the start
            of the run); 0: only after epochs.
        start: the `Position` the run resumed from. When it is mid-epoch, `fit` must be called
            with `initial_epoch=start.epoch` and the training data advanced by `start.step`
            batches: this callback restores the epoch's running metrics, numbers the batches
            from `start.batch` and ends that first epoch after its remaining batches (by
            setting `stop_training` after its last batch and clearing it at the epoch's end).
        write: False on the workers of a multi-worker run that do not write the backup (they
            still take part in reading any state a collective op may need).
    """

    def __init__(self, backup_dir, recipe, steps_per_epoch, every_n_steps=0, start=None,
                 write=True):
        super().__init__()
        self.backup_dir = pathlib.Path(backup_dir)
        self.fingerprint = json.loads(json.dumps(fingerprint(recipe)))
        self.steps_per_epoch = int(steps_per_epoch)
        self.every_n_steps = int(every_n_steps or 0)
        self.start = start or Position()
        self.write = write
        self._epoch = self.start.epoch
        self._offset = self.start.batch  # batches of the current epoch done before this fit
        self._stopped_early = False
        self._previous = None

    # -- fit hooks --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self.write:
            self.backup_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(self.backup_dir)
            state = read_state(self.backup_dir)
            self._previous = _entry_only(state) if state else None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if epoch == self.start.epoch and self._offset and self.start.trackers is not None:
            variables = _metric_variables(self.model)
            if len(variables) == len(self.start.trackers):
                for variable, value in zip(variables, self.start.trackers):
                    variable.assign(np.asarray(value, variable.dtype))

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1 + (self._offset if self._epoch == self.start.epoch else 0)
        if done >= self.steps_per_epoch:
            if self._offset and self._epoch == self.start.epoch:
                self.model.stop_training = True  # the resumed epoch's last batch
                self._stopped_early = True
            return
        step = self._epoch * self.steps_per_epoch + done
        if self.every_n_steps and step % self.every_n_steps == 0:
            self._save(self._epoch, done, trackers=True)

    def on_epoch_end(self, epoch, logs=None):
        if self._stopped_early:
            self.model.stop_training = False
            self._stopped_early = False
        self._offset = 0
        self._save(epoch + 1, 0, trackers=False)

    # -- writing ----------------------------------------------------------------------------
    def _save(self, epoch, batch, trackers):
        step = epoch * self.steps_per_epoch + batch
        entry = {
            "epoch": epoch,
            "batch": batch,
            "step": step,
            "weights": f"step{step:09d}.weights.h5",
            "trackers": ([_as_list(v) for v in _metric_variables(self.model)]
                         if trackers else None),
            "seed_states": {name: _as_list(g.state)
                            for name, g in _seed_generators(self.model).items()},
        }
        if not self.write:
            return
        path = self.backup_dir / entry["weights"]
        try:
            with atomic_path(path, durable=True) as tmp:
                self.model.save_weights(str(tmp))
            state = {"format": FORMAT, **entry, "steps_per_epoch": self.steps_per_epoch,
                     "fingerprint": self.fingerprint, "previous": self._previous}
            write_text_atomic(self.backup_dir / STATE, json.dumps(state, indent=1),
                              durable=True)
        except OSError as exc:
            kept = (f"the previous backup ({self._previous['weights']}) is kept"
                    if self._previous else "there is no earlier backup")
            raise UsmrError(f"{path}: cannot write the training backup ({exc}); {kept}: free "
                            "space and run the same command again to resume") from None
        keep = {entry["weights"], (self._previous or {}).get("weights")}
        for old in self.backup_dir.glob("step*.weights.h5"):
            if old.name not in keep:
                old.unlink(missing_ok=True)
        self._previous = entry


def _entry_only(state):
    return {k: v for k, v in state.items()
            if k in ("epoch", "batch", "step", "weights", "trackers",
                     "seed_states")}
