"""Runs `usmr train` (the CLI's `main`) and SIGKILLs itself at a chosen moment, for the resume
tests: `python kill_driver.py POINT -- train ...args`.

POINT is one of:

- `step:N`          after training batch N (counted from the run's start, 1-based) has ended,
                    before any callback after it has run: mid-epoch unless N ends an epoch;
- `backup-write:N`  inside the N-th backup's weights write, with the temp file half written;
- `backup-commit:N` after the N-th backup's weights file is renamed into place, before its
                    `state.json` is;
- `final-save`      inside the write of `model.keras`, after `final.weights.h5` is written;
- `discard`         inside the removal of the finished run's backup, after `state.json` is gone.
"""

import os
import signal
import sys

import keras


def _die():
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _install(point):
    from usmr_tf.training import backup, trainer

    kind, _, arg = point.partition(":")
    count = {"n": 0}

    if kind == "step":
        target = int(arg)

        class Killer(keras.callbacks.Callback):
            def __init__(self, steps_per_epoch, start):
                super().__init__()
                self.steps_per_epoch, self.start = steps_per_epoch, start
                self.epoch = start.epoch

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                offset = self.start.batch if self.epoch == self.start.epoch else 0
                if self.epoch * self.steps_per_epoch + offset + batch + 1 == target:
                    _die()

        original = trainer._callbacks

        def callbacks(out, recipe, chief, preview, validation=None, backup=None):
            cbs = original(out, recipe, chief, preview, validation, backup)
            cbs.insert(0, Killer(backup.steps_per_epoch, backup.start))
            return cbs

        trainer._callbacks = callbacks
    elif kind in ("backup-write", "backup-commit"):
        target = int(arg)
        save = backup.TrainingBackup._save

        def counted_save(self, epoch, batch, trackers):
            count["n"] += 1
            if count["n"] == target:
                model_save = self.model.save_weights

                def half_write(path, *a, **k):
                    model_save(path, *a, **k)
                    if kind == "backup-write":
                        size = os.path.getsize(path)
                        with open(path, "r+b") as f:
                            f.truncate(size // 2)
                        _die()

                self.model.save_weights = half_write
                original_write = backup.write_text_atomic

                def commit(path, text, durable=False):
                    _die()  # weights renamed into place, state.json not yet

                backup.write_text_atomic = commit
                try:
                    return save(self, epoch, batch, trackers)
                finally:
                    backup.write_text_atomic = original_write
            return save(self, epoch, batch, trackers)

        backup.TrainingBackup._save = counted_save
    elif kind == "final-save":
        save_final = trainer._save_final

        def dying_save_final(model, out):
            model_save = model.save

            def half_save(path, *a, **k):
                with open(path, "wb") as f:
                    f.write(b"PK\x03\x04 half a zip")
                _die()

            model.save = half_save
            try:
                return save_final(model, out)
            finally:
                model.save = model_save

        trainer._save_final = dying_save_final
    elif kind == "discard":
        def dying_discard(backup_dir):
            (backup_dir / backup.STATE).unlink()
            _die()

        backup.discard = dying_discard
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main():
    point, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: kill_driver.py POINT -- train ..."
    _install(point)
    from usmr_tf.cli import main as cli

    sys.exit(cli.main(args))


if __name__ == "__main__":
    main()
