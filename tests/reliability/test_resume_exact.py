"""A killed `usmr train` started again with the same `--out` ends bit-identical to a run that
was never interrupted: every array of `final.weights.h5` (model and both optimizers) and every
value of `history.csv`, wherever the kill lands (issue 12).

The fast test kills in process (an exception from a callback, mid-epoch, between backups); the
slow one SIGKILLs `usmr train` subprocesses at 6 moments: a random time, mid-epoch, inside a
backup's write, between a backup's weights and its commit, inside the final save and inside the
backup's removal.
"""

import pathlib
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from usmr_tf.training import backup as backup_lib
from usmr_tf.training import testing, trainer
from usmr_tf.training.recipe import load_recipe

DRIVER = pathlib.Path(__file__).with_name("kill_driver.py")


def assert_same_run(out, ref):
    """Every array of final.weights.h5 and every cell of history.csv equal (not close)."""
    got, want = (testing.h5_arrays(p / "final.weights.h5") for p in (out, ref))
    assert got.keys() == want.keys()
    assert any("generator_optimizer" in k for k in want)
    assert any("discriminator_optimizer" in k for k in want)
    different = [k for k in want if not np.array_equal(got[k], want[k])]
    assert not different, f"{len(different)} of {len(want)} arrays differ, e.g. {different[:5]}"
    assert (out / "history.csv").read_text() == (ref / "history.csv").read_text()
    assert (out / "model.keras").is_file() and not (out / "backup").exists()
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert not leftovers


# ----------------------------------------------------------------------------- in process


class _Killed(BaseException):
    """Stands in for SIGKILL in process: nothing after it runs (callbacks, final save)."""


class _KillAt(keras.callbacks.Callback):
    def __init__(self, step, steps_per_epoch):
        super().__init__()
        self.step, self.steps_per_epoch, self.epoch = step, steps_per_epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch * self.steps_per_epoch + batch + 1 == self.step:
            raise _Killed()


FAST = ("model.name=gan", "training.epochs=3", "training.steps_per_epoch=3",
        "logging.backup_every_steps=2", "logging.image_every=0", "logging.checkpoint_every=0",
        "logging.verbose=0")


def test_resume_mid_epoch_in_process_is_bit_identical(tmp_path, monkeypatch):
    recipe = load_recipe(testing.QUICK, testing.TINY + FAST)
    trainer.train(recipe, tmp_path / "ref")

    # Killed after step 5 of 9 (3 epochs of 3): backups at steps 2 (epoch 0, batch 2),
    # 3 (end of epoch 0), 4 (epoch 1, batch 1); step 5 is lost, the resume starts mid-epoch 1.
    original = trainer._callbacks

    def with_killer(*args, **kwargs):
        return [_KillAt(5, 3)] + original(*args, **kwargs)

    monkeypatch.setattr(trainer, "_callbacks", with_killer)
    out = tmp_path / "killed"
    with pytest.raises(_Killed):
        trainer.train(recipe, out)
    state = backup_lib.read_state(out / "backup")
    assert (state["epoch"], state["batch"], state["step"]) == (1, 1, 4)
    assert state["previous"]["step"] == 3  # the one before is kept until this one committed
    assert sorted(p.name for p in (out / "backup").glob("*.weights.h5")) == [
        "step000000003.weights.h5", "step000000004.weights.h5"]
    monkeypatch.setattr(trainer, "_callbacks", original)

    result = trainer.train(recipe, out)
    assert result.initial_epoch == 1
    assert result.history.history["loss"] and len(result.history.history["loss"]) == 2
    assert_same_run(out, tmp_path / "ref")


def test_truncated_newest_backup_falls_back_to_the_previous_one(tmp_path, monkeypatch):
    recipe = load_recipe(testing.QUICK, testing.TINY + FAST)
    original = trainer._callbacks
    monkeypatch.setattr(trainer, "_callbacks",
                        lambda *a, **k: [_KillAt(5, 3)] + original(*a, **k))
    out = tmp_path / "killed"
    with pytest.raises(_Killed):
        trainer.train(recipe, out)
    newest = out / "backup" / "step000000004.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])  # disk trouble
    model = trainer.create_model(recipe, trainer.strategy_lib.make_strategy("default"))
    position = backup_lib.restore(model, out / "backup", recipe, 3)
    assert (position.epoch, position.batch, position.step) == (1, 0, 3)
    assert position.source.endswith("step000000003.weights.h5")

    (out / "backup" / "step000000003.weights.h5").unlink()
    with pytest.raises(backup_lib.UsmrError, match="no loadable training backup"):
        backup_lib.restore(model, out / "backup", recipe, 3)
    changed = load_recipe(testing.QUICK, testing.TINY + FAST + ("training.batch_size=2",))
    with pytest.raises(backup_lib.ConfigError, match="training.batch_size=4"):
        backup_lib.restore(model, out / "backup", changed, 3)


def test_history_rows_after_the_backup_are_dropped(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.5\n1,1.25\n2,1.0\n3,0.")  # a killed run's half row
    trainer._truncate_history(path, 2)
    assert path.read_text() == "epoch,loss\n0,1.5\n1,1.25\n"


# ----------------------------------------------------------------------------- SIGKILL


SLOW = ("data.image_size=32", "model.base_filters=4", "model.depth=2", "training.epochs=3",
        "training.steps_per_epoch=5", "logging.image_every=2", "data.n_us=60", "data.n_mr=60",
        "logging.backup_every_steps=3", "logging.checkpoint_every=2", "logging.verbose=2")


def _train(out, point=None, timeout=1500):
    cmd = testing.train_command(out, *SLOW)
    if point:
        cmd = [sys.executable, str(DRIVER), point, "--"] + cmd[3:]
    return testing.run(cmd, timeout=timeout)


def _killed_at_random(out, delay):
    proc = subprocess.Popen(testing.train_command(out, *SLOW), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=testing.subprocess_env(),
                            cwd=testing.REPO)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_sigkill_anywhere_then_resume_is_bit_identical(tmp_path):
    ref = tmp_path / "ref"
    started = time.monotonic()
    done = _train(ref)
    assert done.returncode == 0, done.stderr[-3000:]
    wall = time.monotonic() - started

    # 15 steps in 3 epochs of 5; backups after steps 3, 5 (epoch), 6, 9, 10 (epoch), 12, 15.
    points = ["step:8",          # mid-epoch 1, two steps after the step-6 backup
              "backup-write:3",  # inside the step-6 backup's weights write
              "backup-commit:5",  # step-10 weights in place, state.json still at step 9
              "final-save",      # final.weights.h5 written, model.keras half written
              "discard"]         # run finished, state.json removed, weights still there
    rng = random.Random(12)
    for i, point in enumerate(points + ["random"]):
        out = tmp_path / f"run{i}"
        if point == "random":
            code = _killed_at_random(out, rng.uniform(0.3, 1.0) * wall)
        else:
            code = _train(out, point).returncode
            assert code == -signal.SIGKILL, f"{point}: exit {code}, not killed"
        resumed = _train(out)
        assert resumed.returncode == 0, f"{point}:\n{resumed.stderr[-3000:]}"
        assert_same_run(out, ref)
