import numpy as np
import pytest

from usmr_tf.models.gan_losses import (
    check_gan_loss,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    l1_per_example,
)

REAL = np.array([[[[2.0]], [[0.0]]], [[[1.0]], [[-1.0]]]], "float32")  # [2, 2, 1, 1]
FAKE = np.array([[[[0.5]], [[-0.5]]], [[[3.0]], [[1.0]]]], "float32")


def _softplus(x):
    return np.log1p(np.exp(x))


def test_lsgan_by_hand():
    # generator: mean((f-1)^2) per example: ex0 (0.25 + 2.25)/2, ex1 (4 + 0)/2
    np.testing.assert_allclose(generator_adversarial_loss(FAKE, "lsgan"), [1.25, 2.0])
    real, fake = discriminator_adversarial_loss(REAL, FAKE, "lsgan")
    np.testing.assert_allclose(real, [0.5 * (1 + 1) / 2, 0.5 * (0 + 4) / 2])
    np.testing.assert_allclose(fake, [0.5 * (0.25 + 0.25) / 2, 0.5 * (9 + 1) / 2])


def test_bce_by_hand():
    f = FAKE.reshape(2, 2)
    r = REAL.reshape(2, 2)
    np.testing.assert_allclose(
        generator_adversarial_loss(FAKE, "bce"), _softplus(-f).mean(1), rtol=1e-6
    )
    real, fake = discriminator_adversarial_loss(REAL, FAKE, "bce")
    # -log(sigmoid(r)) and -log(1 - sigmoid(f))
    sig = lambda x: 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(real, 0.5 * (-np.log(sig(r))).mean(1), rtol=1e-5)
    np.testing.assert_allclose(fake, 0.5 * (-np.log(1 - sig(f))).mean(1), rtol=1e-5)


def test_l1_per_example():
    a = np.zeros((2, 2, 2, 1), "float32")
    b = np.stack([np.full((2, 2, 1), 1.0), np.array([[[1.0], [-1.0]], [[0.0], [2.0]]])])
    np.testing.assert_allclose(l1_per_example(a, b.astype("float32")), [1.0, 1.0])


def test_unknown_form():
    with pytest.raises(ValueError, match="gan_loss"):
        check_gan_loss("wgan")
    with pytest.raises(ValueError):
        generator_adversarial_loss(FAKE, "hinge")
