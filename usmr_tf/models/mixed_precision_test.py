"""Every model trains and infers under `mixed_bfloat16`: float32 variables and outputs."""

import numpy as np
import pytest
import tensorflow as tf

from usmr_tf.models.registry import MODELS, build_model
from usmr_tf.training.trainer import precision_policy

CASES = [(name, {}) for name in MODELS] + [
    ("cyclegan", {"generator": "resnet6", "discriminator": "patchgan70", "depth": 2,
                  "use_identity": True, "pool_size": 2}),
]


@pytest.mark.parametrize("name, extra", CASES, ids=[c[0] + ("_resnet" if c[1] else "") for c in CASES])
def test_trains_and_infers_in_mixed_bfloat16(name, extra, tiny_config, phantom_batch):
    us, mr, _ = phantom_batch
    with precision_policy("mixed_bfloat16"):
        model = build_model(name, **{**tiny_config, **extra}, seed=0)
        model.compile()
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    ds = tf.data.Dataset.from_tensor_slices((us[:2], mr[:2])).batch(2).repeat()
    before = [v.numpy().copy() for v in model.trainable_variables]
    history = model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][-1])
    changed = sum(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    assert changed > 0.5 * len(before)
    out = model(us[:2], training=False)
    assert out.dtype == tf.float32 and out.shape == us[:2].shape
    assert float(tf.reduce_max(tf.abs(out))) <= 1.0
