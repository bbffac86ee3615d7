import numpy as np

from usmr_tf.models.head_locator.head_locator_backbone import HeadLocatorBackbone


def test_features_at_half_resolution_and_config_round_trip():
    backbone = HeadLocatorBackbone(base_filters=4, depth=2, stem_stride=2, input_shape=(32, 48, 1))
    out = backbone(np.zeros((2, 32, 48, 1), np.float32))
    assert tuple(out.shape) == (2, 16, 24, 4)
    again = HeadLocatorBackbone.from_config(backbone.get_config())
    assert again.get_config() == backbone.get_config()
    assert again.count_params() == backbone.count_params()
