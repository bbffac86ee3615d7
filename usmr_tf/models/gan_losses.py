"""Per-example loss functions (shape `[B]`), reduced later with `tf.nn.compute_average_loss`.

GAN forms (`gan_loss=`), with `r = D(real)`, `f = D(fake)` raw logits, means over patch positions:

| form | discriminator (one D) | generator |
|---|---|---|
| `"lsgan"` (default) | 0.5 * mean((r - 1)^2) + 0.5 * mean(f^2) | mean((f - 1)^2) |
| `"bce"` (non-saturating) | 0.5 * mean(softplus(-r)) + 0.5 * mean(softplus(f)) | mean(softplus(-f)) |

`softplus(-x) = -log sigmoid(x)` and `softplus(x) = -log(1 - sigmoid(x))`, so `"bce"` is the
paper's log-likelihood objective (Eq. 3, 4, 7, 8) with the usual non-saturating generator term.
The discriminator returns its real and fake halves separately so each is averaged over its own
batch.
"""

from keras import ops

GAN_LOSSES = ("lsgan", "bce")


def check_gan_loss(form):
    if form not in GAN_LOSSES:
        raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {form!r}")
    return form


def _per_example_mean(x):
    x = ops.cast(x, "float32")
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def l1_per_example(prediction, target):
    """Mean absolute error per example: `[B, ...] -> [B]` (Eq. 2, 6, cycle losses)."""
    return _per_example_mean(ops.abs(ops.cast(prediction, "float32") - ops.cast(target, "float32")))


def generator_adversarial_loss(fake_logits, form="lsgan"):
    """Generator side of a GAN term: `[B, ...]` logits of D on fakes -> `[B]`."""
    check_gan_loss(form)
    f = ops.cast(fake_logits, "float32")
    if form == "lsgan":
        return _per_example_mean(ops.square(f - 1.0))
    return _per_example_mean(ops.softplus(-f))


def discriminator_adversarial_loss(real_logits, fake_logits, form="lsgan"):
    """Discriminator side: returns `(real_part, fake_part)`, each `[B]`, already halved."""
    check_gan_loss(form)
    r = ops.cast(real_logits, "float32")
    f = ops.cast(fake_logits, "float32")
    if form == "lsgan":
        return 0.5 * _per_example_mean(ops.square(r - 1.0)), 0.5 * _per_example_mean(ops.square(f))
    return 0.5 * _per_example_mean(ops.softplus(-r)), 0.5 * _per_example_mean(ops.softplus(f))
