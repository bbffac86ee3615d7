"""U-Net backbone of the fetal head locator (Ronneberger et al. 2015), fully convolutional.

``HeadLocatorBackbone(base_filters=16, depth=4, stem_stride=2)`` maps ``[B, H, W, 1]`` (H, W
multiples of ``stem_stride * 2**depth``) to features ``[B, H / stem_stride, W / stem_stride,
base_filters]``: a strided 3x3 stem (a learned down-sampling: on 2 CPU cores the full-resolution
stages of a plain U-Net cost most of the step for little accuracy), ``depth`` down-sampling
stages of two 3x3 conv + batch norm + ReLU, a bottleneck, and ``depth`` up-sampling stages
with skip connections. The segmenter (``head_locator.HeadLocator``) adds the 1x1 head and
resizes the logits back to the input's size.

``tail_filters > 0`` (with ``stem_stride > 1``) adds a **full-resolution tail**: the U-Net's
output up-sampled to the input's size (a transposed convolution), concatenated with a 3x3
convolution of the image itself, and two 3x3 conv + batch norm + ReLU of ``tail_filters``
channels: features ``[B, H, W, tail_filters]``, so the logits are the image's own pixels'
instead of a bilinear up-sampling (``output_stride`` 1). +28 % FLOPs at ``tail_filters=16``
on a ``base_filters=24``, depth-4 U-Net (5.69 vs 4.46 GFLOP a 256x320 frame, measured with
``usmr_tf.models.flops.graph_flops``). Its layers are all named ``tail_*``: a
locator without a tail can warm-start one with it (``assign_from_export(..., new_tail=True)``).
"""

import keras


def _double_conv(x, filters, name):
    for i in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                name=f"{name}_conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


@keras.saving.register_keras_serializable(package="usmr_tf")
class HeadLocatorBackbone(keras.Model):
    """Functional U-Net; ``get_config`` rebuilds it (``from_config``)."""

    def __init__(self, base_filters=16, depth=4, stem_stride=2, input_shape=(None, None, 1),
                 tail_filters=0, **kwargs):
        if tail_filters and stem_stride <= 1:
            raise ValueError("HeadLocatorBackbone: tail_filters needs stem_stride > 1 (without "
                             "a strided stem the U-Net's output is at full resolution already)")
        inputs = keras.Input(shape=tuple(input_shape), name="image")
        x, skips = inputs, []
        if stem_stride > 1:
            x = keras.layers.Conv2D(base_filters, 3, strides=stem_stride, padding="same",
                                    use_bias=False, name="stem_conv")(x)
            x = keras.layers.BatchNormalization(name="stem_bn")(x)
            x = keras.layers.ReLU(name="stem_relu")(x)
        for level in range(depth):
            x = _double_conv(x, base_filters * 2 ** level, f"down{level}")
            skips.append(x)
            x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
        x = _double_conv(x, base_filters * 2 ** depth, "bottleneck")
        for level in reversed(range(depth)):
            x = keras.layers.Conv2DTranspose(base_filters * 2 ** level, 2, strides=2,
                                             name=f"up{level}_transpose")(x)
            x = keras.layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
            x = _double_conv(x, base_filters * 2 ** level, f"up{level}")
        if tail_filters:  # full-resolution tail (module docstring)
            x = keras.layers.Conv2DTranspose(tail_filters, stem_stride, strides=stem_stride,
                                             name="tail_transpose")(x)
            fine = keras.layers.Conv2D(tail_filters, 3, padding="same", use_bias=False,
                                       name="tail_image_conv")(inputs)
            fine = keras.layers.BatchNormalization(name="tail_image_bn")(fine)
            fine = keras.layers.ReLU(name="tail_image_relu")(fine)
            x = keras.layers.Concatenate(name="tail_concat")([x, fine])
            x = _double_conv(x, tail_filters, "tail")
        super().__init__(inputs=inputs, outputs=x, **kwargs)
        self.base_filters, self.depth, self.stem_stride = int(base_filters), int(depth), int(stem_stride)
        self.tail_filters = int(tail_filters)
        self.input_shape_ = tuple(input_shape)

    @property
    def output_stride(self):
        """The features' stride against the input (1: the logits need no up-sampling)."""
        return 1 if self.tail_filters else self.stem_stride

    def get_config(self):
        return {"name": self.name, "base_filters": self.base_filters, "depth": self.depth,
                "stem_stride": self.stem_stride, "tail_filters": self.tail_filters,
                "input_shape": list(self.input_shape_)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
