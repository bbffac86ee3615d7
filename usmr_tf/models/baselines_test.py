import keras
import numpy as np
import pytest

from usmr_tf.models import AutoEncoder, CycleGAN, PlainGAN, UNetGenerator
from usmr_tf.models.conftest import TINY, assert_fit_runs_power_iteration


def _l1(a, b):
    return float(np.abs(np.asarray(a, "float64") - np.asarray(b, "float64")).mean())


def _lsgan_g(f):
    return float(((np.asarray(f, "float64") - 1) ** 2).mean())


def test_autoencoder_is_reconstruction_only(phantom_batch):
    us = phantom_batch[0][:3]
    m = AutoEncoder(**TINY, seed=0)
    m.compile()
    assert m.discriminators == [] and m.discriminator_optimizer is None
    logs = m.test_step(us)  # needs no MR
    assert set(logs) == {"loss_lat", "g_loss", "loss"}
    assert float(logs["loss_lat"]) == pytest.approx(_l1(m(us), us), rel=1e-5)  # Eq. 2
    preview = m.preview_images(us)
    np.testing.assert_array_equal(preview["synth_mr"], preview["recon_us"])


def test_plain_gan_terms(phantom_batch):
    us, mr, _ = (a[:3] for a in phantom_batch)
    m = PlainGAN(**TINY, seed=0)
    logs = m.test_step((us, mr))
    assert set(logs) == {"loss_app", "d_app", "g_loss", "d_loss", "loss"}
    fake, real = m.appearance_discriminator(m(us)), m.appearance_discriminator(mr)
    assert float(logs["loss_app"]) == pytest.approx(_lsgan_g(fake), rel=1e-5)
    want_d = 0.5 * float(((np.asarray(real, "float64") - 1) ** 2).mean()) + 0.5 * float(
        (np.asarray(fake, "float64") ** 2).mean()
    )
    assert float(logs["d_app"]) == pytest.approx(want_d, rel=1e-5)
    assert m.reconstruction_term is None and not hasattr(m, "back_generator")


@pytest.mark.parametrize("use_identity", [False, True])
def test_cycle_gan_terms(phantom_batch, use_identity):
    us, mr, _ = (a[:3] for a in phantom_batch)
    m = CycleGAN(**TINY, use_identity=use_identity, seed=0)
    logs = {k: float(v) for k, v in m.test_step((us, mr)).items()}
    G, F = m.generator, m.back_generator
    cycle = _l1(F(G(us)), us) + _l1(G(F(mr)), mr)
    assert logs["loss_cycle"] == pytest.approx(cycle, rel=1e-5)
    assert logs["loss_app"] == pytest.approx(_lsgan_g(m.appearance_discriminator(G(us))), rel=1e-5)
    assert logs["loss_app_back"] == pytest.approx(
        _lsgan_g(m.back_appearance_discriminator(F(mr))), rel=1e-5
    )
    g_loss = logs["loss_app"] + logs["loss_app_back"] + 10.0 * cycle
    if use_identity:
        ident = _l1(G(mr), mr) + _l1(F(us), us)
        assert logs["loss_identity"] == pytest.approx(ident, rel=1e-5)
        g_loss += 0.5 * 10.0 * ident
    else:
        assert "loss_identity" not in logs
    assert logs["g_loss"] == pytest.approx(g_loss, rel=1e-5)
    assert isinstance(G, UNetGenerator) and isinstance(F, UNetGenerator)


def test_baselines_share_blocks_and_optimizer_lists():
    for m in (PlainGAN(**TINY), CycleGAN(**TINY)):
        m.compile()
        g_ids = {id(v) for v in m.generator_optimizer._trainable_variables}
        d_ids = {id(v) for v in m.discriminator_optimizer._trainable_variables}
        assert g_ids == {id(v) for v in m.generator_variables}
        assert not g_ids & d_ids
        assert g_ids | d_ids == {id(v) for v in m.trainable_variables}
    assert type(CycleGAN(**TINY).generator.encoder).__name__ == "Encoder"


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (AutoEncoder, {}),
        (PlainGAN, {"gan_loss": "bce", "spectral_norm": True}),
        (CycleGAN, {"use_identity": True}),
        (CycleGAN, {"disc_scales": 2}),  # multi-scale discriminators' weights saved and loaded
    ],
)
def test_config_and_keras_round_trip(tmp_path, phantom_batch, cls, kwargs):
    us, mr, _ = (a[:2] for a in phantom_batch)
    m = cls(**TINY, seed=2, **kwargs)
    m.compile()
    m.train_step((us, mr))
    clone = cls.from_config(m.get_config())
    assert clone.get_config() == m.get_config()
    m.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded(us), m(us))
    for a, b in zip(loaded.weights, m.weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", [PlainGAN, CycleGAN])
def test_fit_updates_spectral_norm(phantom_batch, cls):
    us, mr, _ = phantom_batch
    assert_fit_runs_power_iteration(cls(**TINY, spectral_norm=True, seed=0), us, mr)
