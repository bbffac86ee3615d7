"""Shared compile / train_step / test_step for every synthesis model.

A model subclass creates its sub-layers, lists its loss term names (`_term_names`), and
implements `compute_loss_terms(us, mr, training)`, which runs ONE forward pass and returns

- `g_terms`: `{name: (weight, [per_example, ...])}`: generator terms; the term's value is the
  sum of its parts, each `[B]` (float32) averaged over the *global* batch with
  `tf.nn.compute_average_loss`; the generator objective is `sum(weight * value)`;
- `d_terms`: the same for the discriminators (weight 1);
- `outputs`: images (`synth_mr`, ...) for metrics and previews.

`train_step` records that pass on one persistent tape and takes generator gradients on
`generator_variables` and discriminator gradients on `discriminator_variables` (simultaneous
update; the D losses only differentiate D variables, so no `stop_gradient` is needed).
Logs are the *unweighted* term values (`loss_*`, `d_*`), `g_loss` (weighted generator objective,
Eq. 9 for ours), `d_loss` (sum of D terms) and `loss` (= `g_loss`, watched by
`TerminateOnNaN`), kept in `keras.metrics.Mean` trackers (epoch averages, correct across replicas).
`test_step` reports the same plus `mae`, `psnr`, `ssim` (max_val 2.0 on [-1, 1]) of
`synth_mr` against `mr_paired` when the batch carries it.
"""

import keras
import tensorflow as tf
from keras import ops

from usmr_tf.errors import whole_number
from usmr_tf.layers.diff_augment import POLICIES as _DA_POLICIES
from usmr_tf.layers.diff_augment import check_policy as _check_da_policy
from usmr_tf.layers.diff_augment import diff_augment as _diff_augment
from usmr_tf.layers.discriminators import MultiScaleDiscriminator, PatchDiscriminator
from usmr_tf.layers.seeding import sub_seed
from usmr_tf.models.gan_losses import check_gan_loss, l1_per_example
from usmr_tf.models.generators import _BuiltInInit, check_image_size

PAIRED_METRICS = ("mae", "psnr", "ssim")


def default_optimizer():
    """Adam(2e-4, beta_1=0.5): the pix2pix / CycleGAN setting."""
    return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)


def unpack_batch(data):
    """`(us,)`, `(us, mr)`, `(us, mr, mr_paired)`, a dict with those keys, or a bare `us`."""
    if isinstance(data, dict):
        return data["us"], data.get("mr"), data.get("mr_paired")
    if isinstance(data, (tuple, list)):
        if not 1 <= len(data) <= 3:
            raise ValueError(f"a batch is (us, mr[, mr_paired]); got a tuple of {len(data)}")
        data = tuple(data) + (None,) * (3 - len(data))
        return data
    return data, None, None


def paired_metric_values(synth, target):
    """Per-example MAE, PSNR and SSIM of `synth` vs `target` (both in [-1, 1])."""
    synth = tf.cast(synth, tf.float32)
    target = tf.cast(target, tf.float32)
    return {
        "mae": l1_per_example(synth, target),
        "psnr": tf.image.psnr(synth, target, max_val=2.0),
        "ssim": tf.image.ssim(synth, target, max_val=2.0),
    }


class SynthesisModel(_BuiltInInit):
    """Base of `AnatomyAwareSynthesis`, `AutoEncoder`, `PlainGAN`, `CycleGAN`."""

    # Name of the L1 reconstruction term (None when the model has none): tests and docs.
    reconstruction_term = None

    def __init__(
        self,
        image_size=128,
        base_filters=32,
        depth=4,
        lambda_rec=10.0,
        gan_loss="lsgan",
        disc_filters=None,
        disc_scales=1,
        spectral_norm=False,
        diff_augment=False,
        ema_decay=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # True: Zhao et al.'s "color,translation,cutout"; a string: that subset (e.g.
        # "translation,cutout", which leaves intensities alone); False: off.
        if isinstance(diff_augment, str):
            _check_da_policy(diff_augment)
            self.diff_augment = diff_augment
        else:
            self.diff_augment = bool(diff_augment)
        self.image_size, self.depth = check_image_size(image_size, depth)
        self.base_filters = int(base_filters)
        self.lambda_rec = float(lambda_rec)
        self.gan_loss = check_gan_loss(gan_loss)
        self.disc_filters = int(disc_filters) if disc_filters else 2 * self.base_filters
        # Beyond the paper (issue 18, off by default): image discriminators at this many scales
        # (`MultiScaleDiscriminator`: the input pooled 1, 2, 4, ... times); 1 = the paper's one.
        # (image sizes are checked when D is built)
        self.disc_scales = whole_number(disc_scales, "disc_scales")
        self.spectral_norm = bool(spectral_norm)
        # Beyond the paper (issue 18 candidate, off by default): 0 = off; else the decay d of
        # an exponential moving average of the generator's weights, used for inference.
        self.ema_decay = float(ema_decay)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1); got {ema_decay}")
        self.ema_generator = None
        self.seed = seed
        self.generator_optimizer = None
        self.discriminator_optimizer = None

    # -- construction helpers -------------------------------------------------------------
    def _patch_discriminator(self, name, cls=PatchDiscriminator):
        if cls is PatchDiscriminator and self.disc_scales > 1:
            return MultiScaleDiscriminator(
                scales=self.disc_scales,
                patch={"filters": self.disc_filters, "spectral_norm": self.spectral_norm},
                seed=sub_seed(self.seed, name),
                name=name,
            )
        return cls(
            filters=self.disc_filters,
            spectral_norm=self.spectral_norm,
            seed=sub_seed(self.seed, name),
            name=name,
        )

    def _step_seed(self, salt):
        """A `[2]` int32 seed from the generator optimizer's step and `salt`: stateless draws
        that differ every step and repeat exactly on a resumed run."""
        opt = self.generator_optimizer
        step = tf.constant(0, tf.int32) if opt is None else tf.cast(opt.iterations, tf.int32)
        base = 0 if self.seed is None else int(self.seed) % 100003
        return tf.stack([step, tf.constant(base * 16 + int(salt), tf.int32)])

    def _d_input(self, images, salt, training):
        """What an image discriminator sees: DiffAugment-ed when `diff_augment` and training."""
        if not (self.diff_augment and training):
            return images
        policy = _DA_POLICIES if self.diff_augment is True else self.diff_augment
        return _diff_augment(images, self._step_seed(salt), policy=policy)

    def _finish_init(self):
        """Creates the log trackers, then builds every variable (call last in `__init__`)."""
        g_names, d_names = self._term_names()
        names = list(g_names) + list(d_names) + ["g_loss"]
        if d_names:
            names.append("d_loss")
        names.append("loss")
        self._g_names, self._d_names = list(g_names), list(d_names)
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self._paired_trackers = {n: keras.metrics.Mean(name=n) for n in PAIRED_METRICS}
        if self.ema_decay > 0.0:  # before the model is built: it is part of its state
            self._make_ema_generator()
        self._build_now(self.image_size)

    # -- exponential moving average of the generator (flag `ema_decay`) --------------------
    def _make_ema_generator(self):
        """A copy of `generator` (same class and config, name `ema_generator`) whose weights
        start as the generator's and then follow their moving average (`_update_ema`); it is
        a non-trainable part of the model, so checkpoints, resume and `.keras` files carry it."""
        config = dict(self.generator.get_config(), name="ema_generator")
        ema = type(self.generator).from_config(config)
        if not ema.built:
            ema.build((None, self.image_size, self.image_size, 1))
        if len(ema.weights) != len(self.generator.weights):
            raise RuntimeError("ema_generator does not mirror the generator's weights")
        for shadow, live in zip(ema.weights, self.generator.weights):
            shadow.assign(live)
        ema.trainable = False
        self.ema_generator = ema

    def _update_ema(self):
        """ema <- d_t * ema + (1 - d_t) * w, d_t = min(d, (1 + t) / (10 + t)) at generator step
        t (the warm-up of `tf.train.ExponentialMovingAverage`, so early weights fade quickly).
        Non-trainable weights (normalisation statistics) are copied as they are."""
        t = tf.cast(self.generator_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, (1.0 + t) / (10.0 + t))
        trainable = {id(v) for v in self.generator.trainable_weights}
        for shadow, live in zip(self.ema_generator.weights, self.generator.weights):
            value = tf.cast(live.value, shadow.dtype)
            if id(live) in trainable:
                value = decay * shadow.value + (1.0 - decay) * value
            shadow.assign(value)

    @property
    def inference_generator(self):
        """The US -> MR network used for inference and export: `ema_generator` when the flag
        is on, else `generator`."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def _term_names(self):
        """`(generator_term_names, discriminator_term_names)`: fixed by the constructor flags."""
        raise NotImplementedError

    def compute_loss_terms(self, us, mr, training=False):
        raise NotImplementedError

    @property
    def generator_variables(self):
        """Variables the generator optimizer updates (all trainable ones outside the Ds)."""
        d_ids = {id(v) for v in self.discriminator_variables}
        return [v for v in self.trainable_variables if id(v) not in d_ids]

    @property
    def discriminator_variables(self):
        return [v for d in self.discriminators for v in d.trainable_variables]

    @property
    def discriminators(self):
        return []

    # -- keras API ------------------------------------------------------------------------
    def call(self, us, training=None):
        network = self.generator if training else self.inference_generator
        return network(us, training=training)

    def preview_images(self, us):
        """Images for TensorBoard: at least `us` and `synth_mr`."""
        return {"us": us, "synth_mr": self(us, training=False)}

    @property
    def metrics(self):
        return list(self._trackers.values()) + list(self._paired_trackers.values())

    def compile(
        self,
        generator_optimizer=None,
        discriminator_optimizer=None,
        gan_loss=None,
        auto_scale_loss=True,
        **kwargs,
    ):
        """Builds both optimizers on their variable lists now (needed under MirroredStrategy).

        Defaults: Adam(2e-4, beta_1=0.5) each. `gan_loss` overrides the constructor's form.
        Other kwargs (`run_eagerly`, `steps_per_execution`) go to `keras.Model.compile`;
        XLA is off (`jit_compile=False`).
        """
        if gan_loss is not None:
            self.gan_loss = check_gan_loss(gan_loss)
        if kwargs.pop("jit_compile", False):
            raise ValueError("jit_compile is not supported by the synthesis models")
        for key in ("loss", "metrics", "optimizer"):
            if kwargs.get(key) is not None:
                raise ValueError(f"compile({key}=...) is not used: the losses are the paper's")
        g_opt = self._make_optimizer(generator_optimizer, auto_scale_loss)
        super().compile(optimizer=g_opt, jit_compile=False, auto_scale_loss=False, **kwargs)
        g_opt.build(self.generator_variables)
        self.generator_optimizer = g_opt
        d_vars = self.discriminator_variables
        d_opt = None
        if d_vars:
            d_opt = self._make_optimizer(discriminator_optimizer, auto_scale_loss)
            if d_opt is g_opt:
                raise ValueError("generator and discriminator optimizers must be distinct objects")
            d_opt.build(d_vars)
        self.discriminator_optimizer = d_opt

    def _make_optimizer(self, optimizer, auto_scale_loss):
        opt = default_optimizer() if optimizer is None else keras.optimizers.get(optimizer)
        if (
            auto_scale_loss
            and self.dtype_policy.name == "mixed_float16"
            and not isinstance(opt, keras.optimizers.LossScaleOptimizer)
        ):
            opt = keras.optimizers.LossScaleOptimizer(opt)
        return opt

    def get_compile_config(self):
        if self.generator_optimizer is None:
            return None
        return {
            "generator_optimizer": keras.optimizers.serialize(self.generator_optimizer),
            "discriminator_optimizer": (
                keras.optimizers.serialize(self.discriminator_optimizer)
                if self.discriminator_optimizer is not None
                else None
            ),
            "gan_loss": self.gan_loss,
        }

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("generator_optimizer", "discriminator_optimizer"):
            if config.get(key) is not None:
                config[key] = keras.optimizers.deserialize(config[key])
        self.compile(**config)

    # -- steps ----------------------------------------------------------------------------
    @staticmethod
    def _reduce_terms(terms):
        """-> (objective for gradients, {name: unweighted per-replica value for logs}, log total)."""
        objective, log_total, logs = 0.0, 0.0, {}
        for name, (weight, parts) in terms.items():
            value = sum(tf.nn.compute_average_loss(p) for p in parts)
            objective += weight * value
            logs[name] = sum(ops.mean(p) for p in parts)
            log_total += weight * logs[name]
        return objective, logs, log_total

    def _check_terms(self, g_terms, d_terms):
        if list(g_terms) != self._g_names or list(d_terms) != self._d_names:
            raise RuntimeError(
                f"{type(self).__name__} computed terms {list(g_terms)}, {list(d_terms)} but "
                f"declared {self._g_names}, {self._d_names}"
            )

    def _update_trackers(self, g_logs, d_logs, g_total, d_total):
        for name, value in {**g_logs, **d_logs}.items():
            self._trackers[name].update_state(value)
        self._trackers["g_loss"].update_state(g_total)
        if self._d_names:
            self._trackers["d_loss"].update_state(d_total)
        self._trackers["loss"].update_state(g_total)
        return {name: t.result() for name, t in self._trackers.items()}

    def train_step(self, data):
        us, mr, _ = unpack_batch(data)
        if self.generator_optimizer is None:
            raise RuntimeError("call model.compile() before fit()")
        with tf.GradientTape(persistent=True) as tape:
            g_terms, d_terms, _ = self.compute_loss_terms(us, mr, training=True)
            self._check_terms(g_terms, d_terms)
            g_objective, g_logs, g_total = self._reduce_terms(g_terms)
            d_objective, d_logs, d_total = self._reduce_terms(d_terms)
            g_scaled = self.generator_optimizer.scale_loss(g_objective)
            if d_terms:
                d_scaled = self.discriminator_optimizer.scale_loss(d_objective)
        g_vars = self.generator_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(g_scaled, g_vars), g_vars))
        if self.ema_generator is not None:
            self._update_ema()
        if d_terms:
            d_vars = self.discriminator_variables
            self.discriminator_optimizer.apply_gradients(
                zip(tape.gradient(d_scaled, d_vars), d_vars)
            )
        del tape
        return self._update_trackers(g_logs, d_logs, g_total, d_total)

    def test_step(self, data):
        us, mr, mr_paired = unpack_batch(data)
        g_terms, d_terms, outputs = self.compute_loss_terms(us, mr, training=False)
        self._check_terms(g_terms, d_terms)
        _, g_logs, g_total = self._reduce_terms(g_terms)
        _, d_logs, d_total = self._reduce_terms(d_terms)
        logs = self._update_trackers(g_logs, d_logs, g_total, d_total)
        if mr_paired is not None:
            for name, values in paired_metric_values(outputs["synth_mr"], mr_paired).items():
                self._paired_trackers[name].update_state(values)
                logs[name] = self._paired_trackers[name].result()
        return logs

    def _require_mr(self, mr):
        if mr is None:
            raise ValueError(
                f"{type(self).__name__} needs batches (us, mr[, mr_paired]); got us only"
            )

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            base_filters=self.base_filters,
            depth=self.depth,
            lambda_rec=self.lambda_rec,
            gan_loss=self.gan_loss,
            disc_filters=self.disc_filters,
            disc_scales=self.disc_scales,
            spectral_norm=self.spectral_norm,
            diff_augment=self.diff_augment,
            ema_decay=self.ema_decay,
            seed=self.seed,
        )
        return config
