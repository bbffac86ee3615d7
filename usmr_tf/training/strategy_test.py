import csv
import json
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.errors import ConfigError
from usmr_tf.training import strategy as strategy_lib
from usmr_tf.training import testing


def test_default_and_mirrored_strategies():
    assert strategy_lib.make_strategy("default") is tf.distribute.get_strategy()
    mirrored = strategy_lib.make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    n_devices = len(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))
    assert mirrored.num_replicas_in_sync == n_devices
    assert strategy_lib.is_chief(mirrored) and strategy_lib.task_id(mirrored) == 0
    with pytest.raises(ConfigError, match="unknown strategy"):
        strategy_lib.make_strategy("parameter_server")


@pytest.mark.parametrize("tf_config, words", [
    (None, "needs the TF_CONFIG"),
    ("{not json", "not a valid cluster spec"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "valid index"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "valid index"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 1}}', "valid index"),
])
def test_multiworker_needs_a_valid_tf_config(monkeypatch, tf_config, words):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError, match=words):
        strategy_lib.make_strategy("multiworker")


def test_logs_as_vectors_only_reshapes_scalars():
    step = strategy_lib._logs_as_vectors(lambda data: {"loss": tf.constant(2.0),
                                                      "per_class": tf.constant([1.0, 2.0])})
    logs = step(None)
    assert logs["loss"].shape == (1,) and float(logs["loss"][0]) == 2.0
    assert logs["per_class"].shape == (2,)


def test_two_workers_on_localhost_finish_with_identical_weights(tmp_path):
    """keras-team/keras#20585 workaround: `usmr train --strategy multiworker` on 2 processes."""
    ports = testing.free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "run"
    # PlainGAN: two optimizers like every adversarial model, and the quickest of them to trace.
    cmd = testing.train_command(out, *testing.TINY, "model.name=gan", "training.epochs=2",
                                "logging.verbose=2", "logging.image_every=0",
                                strategy="multiworker")
    procs = [
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=testing.REPO,
            env=testing.subprocess_env(TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": i}})),
        )
        for i in range(2)
    ]
    testing.finish_workers(procs, timeout=240)
    chief = testing.h5_arrays(out / "final.weights.h5")
    other = testing.h5_arrays(out / "workers" / "worker1" / "final.weights.h5")
    assert chief.keys() == other.keys() and len(chief) > 4
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
    # Both workers took the same steps: 2 epochs x 2 steps, counted by each optimizer.
    iterations = [v for k, v in chief.items() if k.endswith("vars/0") and v.dtype.kind == "i"]
    assert iterations and all(int(v) == 4 for v in iterations)
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
