"""The realism test: a classifier two-sample test (C2ST) of "real MR" against candidate images.

Lopez-Paz & Oquab, "Revisiting classifier two-sample tests", ICLR 2017: if a classifier trained
to tell set A from set B does no better than chance on held-out images, the two sets cannot be
told apart (by that classifier). Here A is real MR slices and B is the images under test
(synthesized MR, the US passed through, or real MR of other subjects).

Fixed protocol, so that numbers are comparable between runs, models and sessions:

- classes balanced: the larger set is subsampled (seeded) to the size of the smaller, at most
  `max_per_class` images each; all images resized (area) to 64x64;
- a small CNN: three strided 3x3 convolutions (16, 32, 64 filters, LeakyReLU), global average
  pooling, one logit; seeded initializers, Adam 1e-3, `epochs` epochs of batch 32, trained
  from the same seeded initial weights in each of the `folds` stratified folds; augmentation: left-right flips and
  integer shifts of up to 4 px (reflect padding), both from the seeded numpy generator;
- the result is the accuracy of the held-out predictions pooled over the folds (each image
  is predicted once, by the classifier that did not see it): 0.5 = cannot tell, 1.0 = always
  tells. `ci_low`/`ci_high` are a 95 % Wilson interval over those predictions and `p_value`
  the one-sided binomial probability of at least that many correct at chance. The folds'
  predictions are not fully independent; read the interval as approximate;
- `repeats` > 1 runs the whole test again with seeds `seed + 1`, `seed + 2`, ... (another
  subsample, other folds, other initial weights and augmentation) and reports the mean
  accuracy, its standard deviation over the repeats (`accuracy_sd`) and every repeat's value;
  the interval and p-value are then those of the mean accuracy over one repeat's predictions
  (repeats average out the classifier's own training noise, not the sampling of the images).
  Repeat 0 is the single test, so `repeats: 1` gives the values of earlier versions.

Small sets make the accuracy noisy (and below 0.5 by chance); always read a value beside the
real-vs-real row (two sets of real MR) and the identity row (the US passed through).
Research measurements, not diagnoses.
"""

import dataclasses
import math

import numpy as np

from usmr_tf.metrics.checks import as_image_batch


@dataclasses.dataclass(frozen=True)
class RealismConfig:
    """The test's fixed settings (change them only to study the test itself)."""

    size: int = 64
    folds: int = 5
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    max_shift: int = 4
    max_per_class: int = 256
    seed: int = 0
    repeats: int = 1

    def __post_init__(self):
        if (self.folds < 2 or self.epochs < 1 or self.batch_size < 1 or self.size < 16
                or self.repeats < 1):
            raise ValueError(f"invalid realism test settings: {self}")


def resize_images(images, size):
    """`[N, H, W(, 1)]` in [-1, 1] -> `[N, size, size, 1]` float32 (area resampling)."""
    import tensorflow as tf

    batch = as_image_batch(images, "images")[..., None].astype(np.float32)
    if batch.shape[1:3] == (size, size):
        return batch
    return tf.image.resize(batch, (size, size), method="area").numpy().astype(np.float32)


def build_classifier(size=64, seed=0):
    """The test's CNN: three strided 3x3 convolutions, global average pooling, one logit."""
    import keras

    inputs = keras.Input((size, size, 1))
    x = inputs
    for i, filters in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same",
                                kernel_initializer=keras.initializers.HeNormal(seed=seed + i))(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logit = keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(
        seed=seed + 3))(x)
    return keras.Model(inputs, logit, name="realism_classifier")


def _augment(batch, rng, max_shift):
    """Random left-right flips and integer shifts (reflect padding), vectorised."""
    n, h, w = batch.shape[:3]
    flip = rng.random(n) < 0.5
    out = np.where(flip[:, None, None, None], batch[:, :, ::-1], batch)
    if not max_shift:
        return out
    pad = np.pad(out, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)),
                 mode="reflect")
    rows = rng.integers(0, 2 * max_shift + 1, n)[:, None] + np.arange(h)
    cols = rng.integers(0, 2 * max_shift + 1, n)[:, None] + np.arange(w)
    return pad[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _batches(x, y, config, rng):
    """Every epoch's augmented batches, `[steps, batch, S, S, 1]` (the last partial batch of
    an epoch is dropped so that one graph runs them all)."""
    n = len(x)
    per_epoch = max(1, n // config.batch_size)
    size = min(config.batch_size, n)
    xs, ys = [], []
    for _ in range(config.epochs):
        order = rng.permutation(n)
        for i in range(per_epoch):
            idx = order[i * size:(i + 1) * size]
            xs.append(_augment(x[idx], rng, config.max_shift))
            ys.append(y[idx, None])
    return np.stack(xs), np.stack(ys)


class _Trainer:
    """One classifier, optimizer and traced schedule, reset to a seeded initial state for
    every fold (tracing once keeps the test cheap enough for a validation callback; repeats
    only swap the initial weights, `set_initial`)."""

    def __init__(self, config):
        import keras
        import tensorflow as tf

        self.size = config.size
        self.model = build_classifier(config.size, seed=config.seed)
        self.seed = config.seed
        self.initial = [np.array(w) for w in self.model.get_weights()]
        self.optimizer = keras.optimizers.Adam(config.learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
        model, optimizer = self.model, self.optimizer
        image = (None, None, config.size, config.size, 1)

        @tf.function(input_signature=[tf.TensorSpec(image, tf.float32),
                                      tf.TensorSpec((None, None, 1), tf.float32)])
        def train(xs, ys):  # the whole schedule in one graph: no per-step Python
            for i in tf.range(tf.shape(xs)[0]):
                with tf.GradientTape() as tape:
                    loss = loss_fn(ys[i], model(xs[i], training=True))
                optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                              model.trainable_variables))

        self.train = train

    def set_initial(self, seed):
        """The initial weights `build_classifier(size, seed)` draws, for the next folds."""
        if seed != self.seed:
            self.seed = seed
            self.initial = [np.array(w) for w in
                            build_classifier(self.size, seed=seed).get_weights()]

    def reset(self):
        self.model.set_weights(self.initial)
        for variable in self.optimizer.variables:
            if "learning_rate" not in variable.path:
                variable.assign(np.zeros(variable.shape, variable.dtype))

    def fit_and_predict(self, x_train, y_train, x_test, config, rng):
        self.reset()
        xs, ys = _batches(x_train, y_train, config, rng)
        self.train(xs, ys)
        logits = np.concatenate([np.asarray(self.model(x_test[i:i + 256], training=False))
                                 for i in range(0, len(x_test), 256)])
        return (logits[:, 0] > 0).astype(np.float32)


def wilson_interval(correct, total, z=1.96):
    """95 % Wilson score interval of a binomial proportion."""
    if total == 0:
        return math.nan, math.nan
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def realism_test(real_mr, candidates, config=RealismConfig(), progress=None):
    """Classifier two-sample test of `real_mr` against `candidates` (`[N, H, W(, 1)]`, [-1, 1]).

    Returns a dict: `accuracy` (pooled held-out accuracy, 0.5 = indistinguishable; with
    `config.repeats` > 1 the mean over the repeats), `accuracy_sd` (standard deviation over
    the repeats; None for one), `repeat_accuracy` (each repeat's), `ci_low`, `ci_high` (95 %
    Wilson), `p_value` (one-sided binomial vs chance), `n_per_class`, `fold_accuracy` (per
    fold, of repeat 0) and `config`. `progress(1)` (optional) is called after each repeat.
    """
    from scipy import stats

    real = resize_images(real_mr, config.size)
    cand = resize_images(candidates, config.size)
    n = min(len(real), len(cand), config.max_per_class)
    if n < config.folds:
        raise ValueError(f"the realism test needs at least {config.folds} images per class "
                         f"({len(real)} real MR, {len(cand)} candidates)")
    trainer = _Trainer(config)  # one traced schedule for every repeat and fold
    runs = []
    for r in range(config.repeats):
        runs.append(_one_test(real, cand, n, dataclasses.replace(config, seed=config.seed + r),
                              trainer))
        if progress is not None:
            progress(1)
    accuracies = [correct / (2 * n) for correct, _ in runs]
    accuracy = float(np.mean(accuracies))
    total = 2 * n
    low, high = wilson_interval(accuracy * total, total)
    return {
        "accuracy": accuracy,
        "accuracy_sd": float(np.std(accuracies, ddof=1)) if len(runs) > 1 else None,
        "repeat_accuracy": accuracies,
        "ci_low": low,
        "ci_high": high,
        "p_value": float(stats.binom.sf(round(accuracy * total) - 1, total, 0.5)),
        "n_per_class": n,
        "fold_accuracy": runs[0][1],
        "config": dataclasses.asdict(config),
    }


def _one_test(real, cand, n, config, trainer):
    """One repeat: seeded subsample, stratified folds, a classifier per fold from the seed's
    initial weights. Returns (correct predictions, per-fold accuracy)."""
    rng = np.random.default_rng(config.seed)
    real = real[np.sort(rng.permutation(len(real))[:n])]
    cand = cand[np.sort(rng.permutation(len(cand))[:n])]
    x = np.concatenate([real, cand])
    y = np.concatenate([np.zeros(n, np.float32), np.ones(n, np.float32)])
    # stratified folds: each class's images permuted and dealt round-robin
    fold_of = np.empty(2 * n, np.int64)
    for offset in (0, n):
        fold_of[offset + rng.permutation(n)] = np.arange(n) % config.folds
    predicted = np.empty(2 * n, np.float32)
    fold_accuracy = []
    trainer.set_initial(config.seed)
    for fold in range(config.folds):
        test = fold_of == fold
        predicted[test] = trainer.fit_and_predict(x[~test], y[~test], x[test], config, rng)
        fold_accuracy.append(float((predicted[test] == y[test]).mean()))
    return int((predicted == y).sum()), fold_accuracy


def format_realism(result):
    """`0.89 [0.83, 0.93] (n=2x64)`; `0.89 ± 0.02 [0.83, 0.93] (n=2x64, 5 repeats)`."""
    sd = result.get("accuracy_sd")
    spread = "" if sd is None else f" ± {sd:.2f}"
    repeats = len(result.get("repeat_accuracy", [0]))
    tail = f", {repeats} repeats" if repeats > 1 else ""
    return (f"{result['accuracy']:.2f}{spread} [{result['ci_low']:.2f}, "
            f"{result['ci_high']:.2f}] (n=2x{result['n_per_class']}{tail})")
