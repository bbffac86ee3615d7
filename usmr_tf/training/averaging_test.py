import keras
import numpy as np
import pytest

from usmr_tf.errors import DataError, UsmrError
from usmr_tf.training import averaging


def _model(units=3, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units),
                              keras.layers.BatchNormalization()])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 4)), np.ones((4, units)), epochs=1, verbose=0)
    return model


def test_average_is_the_mean_of_every_weight_and_loads(tmp_path):
    a, b = _model(seed=0), _model(seed=1)
    a.save_weights(tmp_path / "a.weights.h5")
    b.save_weights(tmp_path / "b.weights.h5")
    n = averaging.average_weight_files([tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"],
                                       tmp_path / "avg.weights.h5")
    assert n == len(a.weights)  # kernel, bias, gamma, beta, moving mean and variance
    soup = _model(seed=2)
    soup.load_weights(tmp_path / "avg.weights.h5")
    for w, wa, wb in zip(soup.weights, a.weights, b.weights):
        np.testing.assert_allclose(w.numpy(), (wa.numpy() + wb.numpy()) / 2, rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_other_models_and_missing_files_are_refused(tmp_path):
    _model().save_weights(tmp_path / "a.weights.h5")
    _model(units=5).save_weights(tmp_path / "b.weights.h5")
    with pytest.raises(DataError, match="b.weights.h5.*not weights of the same model"):
        averaging.average_weight_files([tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"],
                                       tmp_path / "out.weights.h5")
    with pytest.raises(DataError, match="no such file"):
        averaging.average_weight_files([tmp_path / "a.weights.h5", tmp_path / "c.weights.h5"],
                                       tmp_path / "out.weights.h5")
    with pytest.raises(UsmrError, match="at least two"):
        averaging.average_weight_files([tmp_path / "a.weights.h5"], tmp_path / "out.weights.h5")
    assert not (tmp_path / "out.weights.h5").exists()
    assert averaging.main([str(tmp_path / "o.weights.h5"), str(tmp_path / "a.weights.h5")]) == 2
