"""Helpers shared by the training tests and benchmark: tiny recipes, subprocess launch, ports."""

import os
import pathlib
import socket
import subprocess
import sys


REPO = pathlib.Path(__file__).resolve().parents[2]
QUICK = REPO / "recipes" / "phantom_quick.yaml"

# A model and data small enough for a few training steps in about a second on 2 CPU cores.
TINY = (
    "data.image_size=32", "data.n_us=40", "data.n_mr=40", "data.augment=false",
    "model.base_filters=4", "model.depth=2",
    "training.batch_size=4", "training.steps_per_epoch=2", "training.validation_steps=1",
    "logging.n_images=2",
)


def subprocess_env(**extra):
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def usmr_command(*args):
    return [sys.executable, "-m", "usmr_tf.cli.main", *map(str, args)]


def train_command(out, *overrides, recipe=QUICK, strategy=None):
    cmd = usmr_command("train", "--recipe", recipe, "--out", out)
    if strategy:
        cmd += ["--strategy", strategy]
    for text in overrides:
        cmd += ["--set", text]
    return cmd


def run(cmd, timeout=300, **env):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=subprocess_env(**env), cwd=REPO)


def finish_workers(procs, timeout=600):
    """Waits for worker processes (stdout piped, stderr merged), kills any left running, and
    asserts each exited 0, with the tail of its log. Returns the logs."""
    logs = []
    try:
        for proc in procs:
            logs.append(proc.communicate(timeout=timeout)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for i, proc in enumerate(procs):
        assert proc.returncode == 0, f"worker {i}:\n{logs[i][-3000:]}"
    return logs


def free_ports(n):
    """`n` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def h5_arrays(path):
    """`{dataset path: array}` of every array in a `.weights.h5` file."""
    from usmr_tf.training.averaging import weight_arrays

    return weight_arrays(path)


def read_image_summaries(log_dir):
    """`{step: [HxWxC uint8 images]}` from the `images/` TensorBoard run under `log_dir`."""
    import tensorflow as tf

    found = {}
    for path in sorted(pathlib.Path(log_dir, "images").glob("events.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                encoded = tf.make_ndarray(value.tensor)  # [width, height, png, png, ...]
                found[event.step] = [tf.io.decode_png(s).numpy() for s in encoded[2:]]
    return found
