"""EdgeNet (§2.1, Fig. 2 top-right): four 3x3 convolutions with fixed kernels, never trained.

Kernels (applied in parallel to the 1-channel image, reflect padding, each divided by 4 so that
a [-1, 1] image gives responses in [-2, 2]):

| channel | kernel | responds to |
|---|---|---|
| 0 | Sobel x `[[-1,0,1],[-2,0,2],[-1,0,1]] / 4` | vertical edges (d/dx) |
| 1 | Sobel y `[[-1,-2,-1],[0,0,0],[1,2,1]] / 4` | horizontal edges (d/dy) |
| 2 | Laplacian `[[0,1,0],[1,-4,1],[0,1,0]] / 4` | blobs, thin lines (2nd derivative) |
| 3 | Sobel 45 deg `[[-2,-1,0],[-1,0,1],[0,1,2]] / 4` | diagonal edges |

Output `[B, H, W, 4]`. The layer and its convolutions are `trainable=False`.
"""

import keras
import numpy as np
from keras import ops

EDGE_KERNELS = {
    "sobel_x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "float32") / 4.0,
    "sobel_y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "float32") / 4.0,
    "laplacian": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], "float32") / 4.0,
    "sobel_diagonal": np.array([[-2, -1, 0], [-1, 0, 1], [0, 1, 2]], "float32") / 4.0,
}


@keras.saving.register_keras_serializable(package="usmr_tf")
class FixedKernel(keras.initializers.Initializer):
    """Initializer returning a fixed 3x3 kernel, one of `EDGE_KERNELS`, as `[3, 3, 1, 1]`."""

    def __init__(self, kernel_name):
        if kernel_name not in EDGE_KERNELS:
            raise ValueError(f"unknown edge kernel {kernel_name!r}; one of {sorted(EDGE_KERNELS)}")
        self.kernel_name = kernel_name

    def __call__(self, shape, dtype=None):
        if tuple(shape) != (3, 3, 1, 1):
            raise ValueError(f"FixedKernel needs shape (3, 3, 1, 1), got {tuple(shape)}")
        return ops.cast(EDGE_KERNELS[self.kernel_name].reshape(3, 3, 1, 1), dtype or "float32")

    def get_config(self):
        return {"kernel_name": self.kernel_name}


@keras.saving.register_keras_serializable(package="usmr_tf")
class EdgeNet(keras.layers.Layer):
    """`[B, H, W, 1]` image -> `[B, H, W, 4]` fixed edge maps (frozen)."""

    def __init__(self, **kwargs):
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        self.kernel_names = list(EDGE_KERNELS)
        self.convs = [
            keras.layers.Conv2D(
                1,
                3,
                padding="valid",
                use_bias=False,
                trainable=False,
                kernel_initializer=FixedKernel(name),
                name=name,
            )
            for name in self.kernel_names
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        if shape[-1] != 1:
            raise ValueError(f"EdgeNet expects 1-channel images [B, H, W, 1], got shape {shape}")
        padded = (shape[0],) + tuple(None if d is None else d + 2 for d in shape[1:3]) + (1,)
        for conv in self.convs:
            conv.build(padded)

    def call(self, x):
        x = ops.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        return ops.concatenate([conv(x) for conv in self.convs], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (len(self.convs),)

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        return config
