import numpy as np
import pytest

from usmr_tf.models.head_locator.head_locator_backbone import HeadLocatorBackbone


def test_features_at_half_resolution_and_config_round_trip():
    backbone = HeadLocatorBackbone(base_filters=4, depth=2, stem_stride=2, input_shape=(32, 48, 1))
    out = backbone(np.zeros((2, 32, 48, 1), np.float32))
    assert tuple(out.shape) == (2, 16, 24, 4)
    again = HeadLocatorBackbone.from_config(backbone.get_config())
    assert again.get_config() == backbone.get_config()
    assert again.count_params() == backbone.count_params()


def test_full_resolution_tail_gives_features_at_the_input_size():
    backbone = HeadLocatorBackbone(base_filters=4, depth=2, stem_stride=2, tail_filters=3,
                                   input_shape=(32, 48, 1))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 48, 1)).astype(np.float32)
    out = backbone(x)
    assert tuple(out.shape) == (2, 32, 48, 3) and backbone.output_stride == 1
    assert {layer.name for layer in backbone.layers if layer.name.startswith("tail_")} >= {
        "tail_transpose", "tail_image_conv", "tail_conv1", "tail_conv2"}
    # the tail sees the image itself: a one-pixel change moves that pixel's features
    y = x.copy()
    y[0, 5, 7, 0] += 1.0
    moved = np.abs(backbone(y).numpy() - out.numpy())[0].max(axis=-1)
    assert moved[5, 7] > 0
    again = HeadLocatorBackbone.from_config(backbone.get_config())
    assert again.get_config()["tail_filters"] == 3
    assert again.count_params() == backbone.count_params()
    assert HeadLocatorBackbone(4, 2, 2, input_shape=(32, 48, 1)).output_stride == 2
    with pytest.raises(ValueError, match="stem_stride"):
        HeadLocatorBackbone(4, 2, stem_stride=1, tail_filters=3, input_shape=(32, 48, 1))
