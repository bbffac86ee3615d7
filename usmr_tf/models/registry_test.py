import pytest

from usmr_tf.errors import ConfigError
from usmr_tf.models import AnatomyAwareSynthesis, AutoEncoder, CycleGAN, PlainGAN, build_model
from usmr_tf.models.conftest import TINY


@pytest.mark.parametrize(
    "name, cls",
    [("ours", AnatomyAwareSynthesis), ("ae", AutoEncoder), ("gan", PlainGAN), ("cyclegan", CycleGAN)],
)
def test_build_by_name(name, cls):
    assert type(build_model(name, **TINY)) is cls


def test_ablation_names_set_flags():
    m = build_model("ours_no_struct", **TINY)
    assert not m.use_structural and m.use_bilatent and m.use_attention


def test_errors():
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("pix2pix")
    with pytest.raises(ConfigError, match="does not take"):
        build_model("ae", use_attention=False, **TINY)
    with pytest.raises(ConfigError, match="fixes"):
        build_model("ours_no_att", use_attention=True, **TINY)
    with pytest.raises(ConfigError, match="divisible"):
        build_model("ours", image_size=30, depth=2)
