"""Callbacks for `usmr train`: TensorBoard image grids and periodic weight checkpoints.

Images written here are research images, not diagnoses.
"""

import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

from usmr_tf.atomic import atomic_path

PANELS = ("us", "recon_us", "synth_mr", "real_mr")


def preview_grid(model, us, real_mr):
    """One row per sample: US | recon US | synth MR | real MR, as a `[N, H, 4W, 1]` array in [0, 1].

    Models without a reconstruction branch (GAN baselines) show a black recon panel.
    `real_mr` is the paired phantom MR when there is one, else an unpaired MR sample.
    """
    us = np.asarray(us, np.float32)
    if hasattr(model, "preview_images"):
        panels = {k: np.asarray(v, np.float32) for k, v in model.preview_images(us).items()}
    else:
        panels = {"synth_mr": np.asarray(model(us, training=False), np.float32)}
    panels.setdefault("us", us)
    panels["real_mr"] = np.asarray(real_mr, np.float32)[: len(us)]
    blank = -np.ones_like(us)
    row = np.concatenate([panels.get(name, blank).astype(np.float32) for name in PANELS], axis=2)
    return np.clip((row + 1.0) / 2.0, 0.0, 1.0)


class ImageSummaryCallback(keras.callbacks.Callback):
    """Writes the `preview_grid` to TensorBoard (`tf.summary.image`) every `every_n_epochs`.

    Args:
        log_dir: TensorBoard log directory; images go to its `images/` run.
        us: a fixed batch of US images `[N, H, W, 1]` in [-1, 1].
        real_mr: MR images to show beside them (`[N, H, W, 1]`).
        every_n_epochs: write after epochs `n-1, 2n-1, ...` (0-based).
    """

    def __init__(self, log_dir, us, real_mr, every_n_epochs=1):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self.us = np.asarray(us, np.float32)
        self.real_mr = np.asarray(real_mr, np.float32)
        self.every_n_epochs = int(every_n_epochs)
        self._writer = None

    def _write(self, epoch):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "images"))
        grid = preview_grid(self.model, self.us, self.real_mr)
        with self._writer.as_default():
            tf.summary.image(
                "us | recon_us | synth_mr | real_mr", grid, step=epoch, max_outputs=len(grid),
                description="Research images, not for diagnosis.",
            )
        self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        if self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            self._write(epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Keeps the weights every `every_n_epochs` epochs (and after the last one).

    Keras' `ModelCheckpoint` counts `save_freq` in batches and writes the HDF5 file in place;
    this counts epochs and writes `epochNNNN.weights.h5` under a temp name, renamed when
    complete, so a kill never leaves a truncated snapshot. They are kept besides the resume
    backup (`training/backup.py`), which is deleted when the run ends.
    """

    def __init__(self, directory, every_n_epochs):
        super().__init__()
        self.every_n_epochs = int(every_n_epochs)
        self.directory = pathlib.Path(directory)

    @staticmethod
    def path(directory, epoch):
        """The snapshot written after `epoch` epochs (1-based) in `directory`."""
        return pathlib.Path(directory) / f"epoch{epoch:04d}.weights.h5"

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") if self.params else None
        if (epoch + 1) % self.every_n_epochs == 0 or (last is not None and epoch + 1 == last):
            with atomic_path(self.path(self.directory, epoch + 1)) as tmp:
                self.model.save_weights(str(tmp))


class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' `TerminateOnNaN` watches only `logs["loss"]`; our models log several losses
    (`g_loss`, `d_loss`, ...). This one checks every log whose name contains "loss" and raises,
    so `BackupAndRestore` keeps the last good epoch's backup instead of deleting it."""

    def __init__(self):
        super().__init__(raise_error=True)

    def on_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if "loss" in key and not np.all(np.isfinite(np.asarray(value, np.float64))):
                raise FloatingPointError(
                    f"training diverged: `{key}` is {float(np.asarray(value).ravel()[0])} at "
                    f"batch {batch}"
                )
