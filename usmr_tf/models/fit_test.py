"""`fit` for a few dozen steps on phantoms lowers the reconstruction L1 of every model.

PlainGAN has no reconstruction (Table 1 "GAN" is adversarial only): for it we check that the
synthesised images move toward the MR distribution (L1 between the mean synth image and the
mean real MR image drops). Learning rate 1e-3 so 24 steps of batch 4 show progress.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.models import build_model
from usmr_tf.models.conftest import TINY


def _adam():
    return keras.optimizers.Adam(1e-3, beta_1=0.5)


def _reconstruction(model, us, mr):
    g_terms, _, out = model.compute_loss_terms(us, mr)
    if model.reconstruction_term is None:
        synth = np.asarray(out["synth_mr"])
        return float(np.abs(synth.mean(0) - mr.mean(0)).mean())
    return float(sum(np.mean(p) for p in g_terms[model.reconstruction_term][1]))


@pytest.mark.parametrize("name", ["ours", "ae", "gan", "cyclegan"])
def test_fit_lowers_reconstruction_l1(phantom_batch, name):
    us, mr, _ = phantom_batch
    model = build_model(name, **TINY, seed=0)
    model.compile(generator_optimizer=_adam(), discriminator_optimizer=_adam())
    frozen = [w.numpy() for w in model.edge_net.weights] if name == "ours" else []
    before = _reconstruction(model, us, mr)
    ds = tf.data.Dataset.from_tensor_slices((us, mr)).batch(4).repeat()
    history = model.fit(ds, steps_per_epoch=24, epochs=1, verbose=0, shuffle=False)
    after = _reconstruction(model, us, mr)
    assert after < 0.95 * before, (name, before, after)
    assert model.generator_optimizer.iterations.numpy() == 24
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    if name == "ours":  # EdgeNet is frozen: its kernels are unchanged after fit
        for w, w0 in zip(model.edge_net.weights, frozen):
            np.testing.assert_array_equal(w.numpy(), w0)
        assert model.discriminator_optimizer.iterations.numpy() == 24
