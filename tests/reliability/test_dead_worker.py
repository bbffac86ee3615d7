"""A worker of a 2-worker `MultiWorkerMirroredStrategy` run (127.0.0.1) dies mid-run; every
worker is then stopped and started again with the same command: all resume from the chief's
backup and the run ends with the weights of an uninterrupted 2-worker run (issue 12)."""

import json
import signal
import subprocess
import time

import numpy as np
import pytest

from usmr_tf.training import backup as backup_lib
from usmr_tf.training import testing

ARGS = testing.TINY + ("model.name=gan", "training.epochs=3", "training.steps_per_epoch=4",
                       "logging.backup_every_steps=2", "logging.image_every=0",
                       "logging.verbose=2")


def _start_workers(out):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in testing.free_ports(2)]}
    cmd = testing.train_command(out, *ARGS, strategy="multiworker")
    return [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             cwd=testing.REPO, env=testing.subprocess_env(TF_CONFIG=json.dumps(
                                 {"cluster": cluster, "task": {"type": "worker", "index": i}})))
            for i in range(2)]


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_dead_worker_then_restart_ends_like_an_uninterrupted_run(tmp_path):
    ref = tmp_path / "ref"
    testing.finish_workers(_start_workers(ref))

    out = tmp_path / "run"
    procs = _start_workers(out)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and all(p.poll() is None for p in procs):
            state = backup_lib.read_state(out / "backup") if (out / "backup").exists() else None
            if state and state["step"] >= 4:
                break
            time.sleep(0.05)
        assert all(p.poll() is None for p in procs), "the run ended before the kill"
        procs[1].send_signal(signal.SIGKILL)  # worker 1 dies ...
        procs[1].wait()
        time.sleep(2)
        assert procs[0].poll() is None or procs[0].returncode != 0  # ... the chief cannot finish
        procs[0].send_signal(signal.SIGKILL)  # the scheduler stops the job
        procs[0].wait()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    assert not (out / "final.weights.h5").exists()
    resumed_from = backup_lib.read_state(out / "backup")["step"]
    assert 4 <= resumed_from < 12

    testing.finish_workers(_start_workers(out))  # every worker again, the same command (new ports are fine)
    for name in ("final.weights.h5", "workers/worker1/final.weights.h5"):
        got, want = testing.h5_arrays(out / name), testing.h5_arrays(ref / name)
        assert got.keys() == want.keys() and len(got) > 4
        different = [k for k in want if not np.array_equal(got[k], want[k])]
        assert not different, f"{name}: {len(different)} arrays differ, e.g. {different[:3]}"
    assert (out / "history.csv").read_text() == (ref / "history.csv").read_text()
