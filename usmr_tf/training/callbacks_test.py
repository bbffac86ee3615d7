import keras
import numpy as np
import pytest

from usmr_tf.training import callbacks as callbacks_lib
from usmr_tf.training import testing


class Previewer(keras.Model):
    """Stand-in exposing the model contract's `preview_images`: recon = -us, synth = us / 2."""

    def __init__(self, with_recon=True):
        super().__init__()
        self.with_recon = with_recon
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, us, training=False):
        return us * 0.5 * self.scale

    def preview_images(self, us):
        out = {"us": us, "synth_mr": self(us)}
        if self.with_recon:
            out["recon_us"] = -us
        return out


def _images(n=3, size=8, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 1)).astype("float32")


def test_preview_grid_panel_order_and_range():
    us, mr = _images(seed=1), _images(seed=2)
    grid = callbacks_lib.preview_grid(Previewer(), us, mr)
    assert grid.shape == (3, 8, 32, 1)
    assert grid.min() >= 0 and grid.max() <= 1
    to01 = lambda x: (x + 1) / 2  # noqa: E731
    np.testing.assert_allclose(grid[:, :, 0:8], to01(us), atol=1e-6)
    np.testing.assert_allclose(grid[:, :, 8:16], to01(-us), atol=1e-6)
    np.testing.assert_allclose(grid[:, :, 16:24], to01(us * 0.5), atol=1e-6)
    np.testing.assert_allclose(grid[:, :, 24:32], to01(mr), atol=1e-6)


def test_preview_grid_without_reconstruction_shows_black_panel():
    grid = callbacks_lib.preview_grid(Previewer(with_recon=False), _images(), _images(seed=3))
    assert np.all(grid[:, :, 8:16] == 0)


def test_image_summary_written_every_n_epochs(tmp_path):
    model = Previewer()
    model.compile(optimizer="sgd", loss="mse")
    us = _images(n=2)
    cb = callbacks_lib.ImageSummaryCallback(tmp_path, us, _images(n=2, seed=5), every_n_epochs=2)
    model.fit(us, us, epochs=5, verbose=0, callbacks=[cb])
    written = testing.read_image_summaries(tmp_path)
    assert sorted(written) == [1, 3]  # after epochs 2 and 4 (0-based 1, 3)
    images = written[3]
    assert len(images) == 2 and images[0].shape == (8, 32, 1)
    expected = np.round((us[0] + 1) / 2 * 255)
    assert np.abs(images[0][:, :8].astype(float) - expected).max() <= 1


def test_terminate_on_nan_checks_every_loss():
    cb = callbacks_lib.TerminateOnNaN()
    cb.on_batch_end(0, {"g_loss": 1.0, "d_loss": 0.5, "psnr": float("nan")})  # not a loss
    with pytest.raises(FloatingPointError, match="d_loss"):
        cb.on_batch_end(3, {"g_loss": 1.0, "d_loss": float("nan")})
    with pytest.raises(FloatingPointError, match="g_loss"):
        cb.on_batch_end(4, {"g_loss": np.float32("inf")})


def test_periodic_checkpoint_keeps_every_nth_and_last(tmp_path):
    model = Previewer()
    model.compile(optimizer="sgd", loss="mse")
    us = _images(n=2)
    cb = callbacks_lib.PeriodicCheckpoint(tmp_path / "ckpt", every_n_epochs=2)
    model.fit(us, us, epochs=5, verbose=0, callbacks=[cb])
    kept = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert kept == ["epoch0002.weights.h5", "epoch0004.weights.h5", "epoch0005.weights.h5"]
