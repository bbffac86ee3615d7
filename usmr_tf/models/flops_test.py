"""The analytic FLOP counter against a hand count and against the profiler's live-op count."""

import keras
import pytest
import tensorflow as tf

from usmr_tf.layers.seeding import kernel_initializer
from usmr_tf.models import flops
from usmr_tf.models.base import SynthesisModel
from usmr_tf.models.gan_losses import discriminator_adversarial_loss, generator_adversarial_loss
from usmr_tf.models.registry import build_model


class ToyGen(keras.Model):
    def __init__(self):
        super().__init__(name="toy_generator")
        self.c0 = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer=kernel_initializer(1))
        self.c1 = keras.layers.Conv2D(1, 1, kernel_initializer=kernel_initializer(2))

    def call(self, x, training=None):
        return self.c1(self.c0(x))

    def build(self, input_shape):
        self.c0.build(input_shape)
        self.c1.build(tuple(input_shape)[:-1] + (4,))


class Toy(SynthesisModel):
    """G: 3x3 conv 1->4, 1x1 conv 4->1; D: one 4x4 stride-2 conv 1->2; LSGAN terms only."""

    def __init__(self, **kwargs):
        super().__init__(image_size=8, depth=1, **kwargs)
        self.generator = ToyGen()
        self.disc = keras.layers.Conv2D(2, 4, strides=2, padding="same",
                                        kernel_initializer=kernel_initializer(3))
        self._finish_init()

    def _build_components(self, input_shape):
        self.generator.build(input_shape)
        self.disc.build(input_shape)

    @property
    def discriminators(self):
        return [self.disc]

    def _term_names(self):
        return ["loss_app"], ["d_app"]

    def compute_loss_terms(self, us, mr, training=False):
        fake = self.generator(us, training=training)
        real_l, fake_l = self.disc(mr), self.disc(fake)
        g = {"loss_app": (1.0, [generator_adversarial_loss(fake_l)])}
        d = {"d_app": (1.0, list(discriminator_adversarial_loss(real_l, fake_l)))}
        return g, d, {"synth_mr": fake}


def test_hand_count_of_a_toy_model():
    model = Toy()
    model.compile()
    count = flops.train_step_flops(model, batch_size=2)
    b, hw = 2, 8 * 8
    conv0 = 2 * b * hw * 3 * 3 * 1 * 4  # 9216
    conv1 = 2 * b * hw * 1 * 4 * 1  # 1024
    disc = 2 * b * 4 * 4 * 4 * 4 * 1 * 2  # stride 2: 4x4 outputs; 2048 per call
    assert count.forward == conv0 + conv1 + 2 * disc
    # G pass: conv0 weight grad only (its input is the batch), conv1 weight + input grads,
    # D(fake) input grad only; D(real) does not depend on G.
    assert count.g_backward == conv0 + 2 * conv1 + disc
    # D pass: weight grads of both D calls; no input grad (the first D conv sees images).
    assert count.d_backward == 2 * disc
    assert count.total == 31744
    # The profiler's statistics over the ops train_step runs agree exactly here...
    live = flops.graph_flops(flops.traced_train_step(model, 2), op_types=flops.WEIGHT_OPS)
    assert sum(live.values()) == count.total
    # ...while the whole graph also holds gradient ops that never run.
    everything = flops.graph_flops(flops.traced_train_step(model, 2), live_only=False,
                                   op_types=flops.WEIGHT_OPS)
    assert sum(everything.values()) > count.total


@pytest.mark.parametrize(
    "name, config",
    [
        ("cyclegan", {}),
        ("ours", {}),
        ("cyclegan", {"generator": "resnet6", "discriminator": "patchgan70", "depth": 2,
                      "use_identity": True, "pool_size": 4}),
    ],
)
def test_analytic_count_matches_the_profiler_live_count(name, config, tiny_config):
    model = build_model(name, **{**tiny_config, **config})
    model.compile()
    count = flops.train_step_flops(model, batch_size=2)
    fn = flops.traced_train_step(model, 2)
    live = sum(flops.graph_flops(fn, op_types=flops.WEIGHT_OPS).values())
    # U-Nets within 3 %. The profiler's backprop formulas count "valid" convs on their padded
    # input size (the ResNet's reflection-padded convs): above the true MACs, by at most the
    # padded/unpadded area ratio, largest when tiny: (8 + 2)^2 / 8^2 = 1.56 for the 3x3 convs of
    # the residual blocks at 32 px / 4 (the 7x7 stem: (32 + 6)^2 / 32^2 = 1.41).
    if config.get("generator", "unet") == "unet":
        assert abs(live - count.total) <= 0.03 * count.total, (live, count.total)
    else:
        assert 0.97 * count.total <= live <= 1.57 * count.total, (live, count.total)
    assert count.forward < count.total <= 4 * count.forward
    # tf.compat.v1.profiler's total covers the unpruned graph plus element-wise ops.
    assert flops.profiler_total_flops(fn) > count.total


def test_pool_output_carries_no_generator_dependence(tiny_config):
    plain = build_model("cyclegan", **tiny_config)
    pooled = build_model("cyclegan", pool_size=4, **tiny_config)
    a, b = (flops.train_step_flops(m, 2) for m in (plain, pooled))
    # With the pool, D runs once more on each fake side (forward + D pass), no extra G pass.
    assert b.g_backward == a.g_backward
    assert b.forward > a.forward and b.d_backward > a.d_backward
