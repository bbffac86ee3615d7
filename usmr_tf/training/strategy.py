"""Distribution strategies for `usmr train`: "default", "mirrored" and "multiworker".

- "default": TF's default (no-op) strategy, one device.
- "mirrored": `tf.distribute.MirroredStrategy` over every local GPU (or every logical CPU).
- "multiworker": `tf.distribute.MultiWorkerMirroredStrategy`, cluster read from `TF_CONFIG`.

Keras 3's `fit` fails under `MultiWorkerMirroredStrategy` (keras-team/keras#20585) in two
places, both reproduced here with Keras 3.15.1 / TF 2.21:

1. `Trainer._maybe_symbolic_build` pulls one batch and calls
   `strategy.reduce("MEAN", batch, axis=None)` on its `PerReplica` values, which fails with
   "Attempt to convert a value (PerReplica ...) with an unsupported type".
2. `reduce_per_replica` reduces every log with `strategy.reduce("MEAN", v, axis=0)` in
   multi-worker mode, which fails for scalar logs ("Invalid reduction dimension 0 for input
   with 0 dimensions").

`patch_for_multi_worker` applies the smallest fix for each, on the model instance only:
the model and its optimizers are built before `fit` (our models build their optimizers in
`compile`), so the symbolic build is skipped; and `train_step` / `test_step` return each
scalar log as a shape-[1] tensor, which `reduce(..., axis=0)` turns back into the mean over
all replicas of all workers. Nothing in Keras is monkey-patched globally.
"""

import json
import os

import tensorflow as tf

from usmr_tf.errors import ConfigError


def _tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError(
            "--strategy multiworker needs the TF_CONFIG environment variable, e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\''
        )
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"TF_CONFIG is not a valid cluster spec ({exc!r}): {raw}") from None
    if not isinstance(workers, list) or not workers:
        raise ConfigError(f"TF_CONFIG: `cluster.worker` must be a non-empty list: {raw}")
    kind = task.get("type")
    if not ((kind == "worker" and 0 <= index < len(workers)) or (kind == "chief" and index == 0)):
        raise ConfigError(f"TF_CONFIG: `task` must be a worker with a valid index: {raw}")
    return config


def make_strategy(name="default"):
    """Returns the `tf.distribute.Strategy` named by `name`."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy(devices=[d.name for d in gpus])
        # CPU only (tests, CI): reduce on one device instead of CPU collectives, whose instance
        # keys clash when several MirroredStrategy objects live in one process.
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            devices=cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
    if name == "multiworker":
        _tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown strategy {name!r}: use default, mirrored or multiworker")


def in_multi_worker_mode(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()  # noqa: SLF001 (same test Keras makes)
    )


def is_chief(strategy):
    """True for the worker that writes logs, checkpoints and the final model."""
    if not in_multi_worker_mode(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0


def task_id(strategy):
    return strategy.cluster_resolver.task_id if in_multi_worker_mode(strategy) else 0


def _logs_as_vectors(step):
    def wrapped(data):
        logs = step(data)
        return {
            key: tf.reshape(value, [1]) if getattr(value, "shape", None) == () else value
            for key, value in logs.items()
        }

    return wrapped


def patch_for_multi_worker(model):
    """Work around keras-team/keras#20585 on one built, compiled model (see module doc)."""
    if not model.built or not model.optimizer or not model.optimizer.built:
        raise ConfigError(
            "multi-worker training needs the model and its optimizers built before fit "
            "(build them in compile); keras-team/keras#20585"
        )
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None  # fix 1
    model.train_step = _logs_as_vectors(model.train_step)  # fix 2
    model.test_step = _logs_as_vectors(model.test_step)
    return model
