"""Cross-modal attention (§2.2, red *Attention* block of Fig. 2).

    f~_M = eta( delta(f_U)^T . phi(f_U) . g(f_M) ) + f_M

with `eta, delta, phi, g` 1x1 convolutions. Matrix shapes (per example, N = H*W positions,
features written as C x N matrices as in non-local networks):

- delta(f_U), phi(f_U): C' x N (C' = `key_channels`, default max(1, C_U // 8));
- A = softmax_rows(delta(f_U)^T . phi(f_U)): N x N, row n = how much US position n attends to
  every other US position (the "self-attention guidance" from the US decoder-B);
- g(f_M): C_v x N (C_v = `value_channels`, default max(1, C_M // 2)); the product is taken as
  A . g(f_M)^T: N x C_v, i.e. every MR position gathers MR features from the positions that
  the *US* features say are related to it (non-local, cross-modal);
- eta: C_v -> C_M 1x1 conv, then the residual `+ f_M`: output shape == f_M shape.

The row softmax (the "embedded Gaussian" of non-local nets, as in SAGAN) is our choice: the
paper writes a bare product; without normalisation its scale grows with N.
`eta` is zero-initialised by default, so the block starts as the identity and learns a
residual correction (SAGAN practice). f_U and f_M must have the same H and W.
Memory is O(B * N^2): keep it at a coarse decoder level (32x32 -> 4 MiB per example in float32).
"""

import keras
from keras import ops

from usmr_tf.layers.seeding import kernel_initializer


def _spatial(x):
    """(H, W) of `[B, H, W, C]`: Python ints when static, else tensors read at run time."""
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        return ops.shape(x)[1], ops.shape(x)[2]
    return int(h), int(w)


def _tokens(x):
    h, w = _spatial(x)
    return h * w


@keras.saving.register_keras_serializable(package="usmr_tf")
class CrossModalAttention(keras.layers.Layer):
    """Inputs `[f_u, f_m]`, each `[B, H, W, C]`; returns `[B, H, W, C_M]`."""

    def __init__(
        self,
        key_channels=None,
        value_channels=None,
        eta_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.eta_initializer = keras.initializers.get(eta_initializer)
        self.seed = seed

    def build(self, input_shape):
        fu_shape, fm_shape = (tuple(s) for s in input_shape)
        c_u, c_m = fu_shape[-1], fm_shape[-1]
        ck = self.key_channels or max(1, c_u // 8)
        cv = self.value_channels or max(1, c_m // 2)
        conv = lambda c, name, init: keras.layers.Conv2D(c, 1, kernel_initializer=init, name=name)
        self.delta = conv(ck, "delta", kernel_initializer(self.seed, "delta"))
        self.phi = conv(ck, "phi", kernel_initializer(self.seed, "phi"))
        self.g = conv(cv, "g", kernel_initializer(self.seed, "g"))
        self.eta = conv(c_m, "eta", self.eta_initializer)
        self.delta.build(fu_shape)
        self.phi.build(fu_shape)
        self.g.build(fm_shape)
        self.eta.build(fm_shape[:-1] + (cv,))

    def attention_map(self, f_u):
        """A = softmax_rows(delta(f_U)^T phi(f_U)): `[B, N, N]`, float32."""
        d = self.delta(f_u)
        p = self.phi(f_u)
        n = _tokens(d)
        d = ops.cast(ops.reshape(d, (-1, n, self.delta.filters)), "float32")  # delta^T: N x C'
        p = ops.cast(ops.reshape(p, (-1, n, self.phi.filters)), "float32")  # phi^T: N x C'
        return ops.softmax(ops.matmul(d, ops.transpose(p, (0, 2, 1))), axis=-1)

    def call(self, inputs):
        f_u, f_m = inputs
        attn = self.attention_map(f_u)
        v = self.g(f_m)
        h, w = _spatial(v)
        v = ops.cast(ops.reshape(v, (-1, _tokens(v), self.g.filters)), "float32")  # g(f_M)^T
        # Static channel counts (and H, W when known) keep the graph convertible (TFLite /
        # ONNX / TF.js) and free of run-time shape ops (XNNPACK delegates it whole).
        out = ops.reshape(ops.matmul(attn, v), (-1, h, w, self.g.filters))
        return self.eta(ops.cast(out, f_m.dtype)) + f_m

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            key_channels=self.key_channels,
            value_channels=self.value_channels,
            eta_initializer=keras.initializers.serialize(self.eta_initializer),
            seed=self.seed,
        )
        return config
