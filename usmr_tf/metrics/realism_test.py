import numpy as np
import pytest
from scipy import ndimage

from usmr_tf.metrics import evaluation, realism

FAST = realism.RealismConfig(size=32, epochs=15)


def _textures(n, seed, sigma=3.0, size=48):
    """Random blob textures; another `sigma` = another texture scale (survives resizing)."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.normal(size=(n, size, size)), (0, sigma, sigma))
    return (np.tanh(x / x.std() * 2) * 0.8).astype(np.float32)


def test_same_distribution_is_near_chance_and_different_is_told_apart():
    real = _textures(40, 1)
    same = realism.realism_test(real, _textures(40, 2), FAST)
    assert same["ci_low"] <= 0.5 <= same["ci_high"], same
    assert same["p_value"] > 0.01
    noisy = realism.realism_test(real, _textures(40, 3, sigma=1.0), FAST)
    assert noisy["accuracy"] >= 0.9 and noisy["p_value"] < 1e-6, noisy
    assert len(noisy["fold_accuracy"]) == 5 and noisy["n_per_class"] == 40


def test_fixed_seed_repeats_and_classes_are_balanced():
    real, cand = _textures(30, 4), _textures(12, 5, sigma=1.0)
    a = realism.realism_test(real, cand, FAST)
    b = realism.realism_test(real, cand, FAST)
    assert a == b
    assert a["n_per_class"] == 12  # the larger set subsampled to the smaller
    assert a["config"]["size"] == 32 and a["config"]["folds"] == 5


def test_default_protocol_and_errors():
    config = realism.RealismConfig()
    assert (config.size, config.folds, config.seed) == (64, 5, 0)
    model = realism.build_classifier(64)
    convs = [layer for layer in model.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.strides for c in convs] == [(2, 2)] * 3 and model.output_shape == (None, 1)
    with pytest.raises(ValueError, match="at least 5 images"):
        realism.realism_test(_textures(4, 0), _textures(10, 1), FAST)
    with pytest.raises(ValueError):
        realism.RealismConfig(folds=1)
    low, high = realism.wilson_interval(45, 50)
    assert 0.78 < low < 0.9 < high < 0.97


def test_augment_keeps_shape_and_values():
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, (6, 16, 16, 1)).astype(np.float32)
    out = realism._augment(batch, rng, 4)
    assert out.shape == batch.shape
    assert out.min() >= batch.min() and out.max() <= batch.max()
    assert not np.array_equal(out, batch)


def test_evaluation_row_has_realism_with_interval():
    us = _textures(10, 6, sigma=1.0)[..., None]
    real = _textures(10, 7)[..., None]
    metrics = evaluation.evaluate_synthesis(us, us, real, with_deformation=False,
                                            realism_config=FAST)["metrics"]
    assert metrics["realism"] >= 0.8 and metrics["realism_n"] == 10
    low, high = metrics["realism_ci"]
    assert low <= metrics["realism"] <= high
    assert "realism" in evaluation.format_table(metrics)
    small = evaluation.evaluate_synthesis(us[:3], us[:3], real, with_deformation=False,
                                          realism_config=FAST)["metrics"]
    assert "realism" not in small  # too few images for 5 folds: skipped, not guessed


def test_repeats_are_the_single_tests_with_the_next_seeds():
    real, cand = _textures(20, 8), _textures(20, 9, sigma=2.0)
    config = realism.RealismConfig(size=32, epochs=5, repeats=3)
    result = realism.realism_test(real, cand, config)
    singles = [realism.realism_test(real, cand, realism.RealismConfig(size=32, epochs=5, seed=s))
               for s in range(3)]
    assert result["repeat_accuracy"] == [s["accuracy"] for s in singles]
    assert result["accuracy"] == pytest.approx(np.mean(result["repeat_accuracy"]))
    assert result["accuracy_sd"] == pytest.approx(np.std(result["repeat_accuracy"], ddof=1))
    assert result["fold_accuracy"] == singles[0]["fold_accuracy"]  # repeat 0 = the single test
    assert singles[0]["accuracy_sd"] is None and len(singles[0]["repeat_accuracy"]) == 1
    assert result["ci_low"] <= result["accuracy"] <= result["ci_high"]
    assert result["config"]["repeats"] == 3
    assert "± " in realism.format_realism(result) and "3 repeats" in realism.format_realism(result)
    assert "±" not in realism.format_realism(singles[0])
    with pytest.raises(ValueError):
        realism.RealismConfig(repeats=0)


def test_each_repeat_starts_from_its_seeds_initial_weights():
    trainer = realism._Trainer(realism.RealismConfig(size=32, epochs=1))
    seed0 = [w.copy() for w in trainer.initial]
    trainer.set_initial(1)
    want = realism.build_classifier(32, seed=1).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(trainer.initial, want))
    assert not any(np.array_equal(a, b) for a, b in zip(trainer.initial, seed0) if a.any())
    trainer.set_initial(0)
    assert all(np.array_equal(a, b) for a, b in zip(trainer.initial, seed0))


def test_evaluation_row_reports_the_repeats_spread():
    us = _textures(10, 6, sigma=1.0)[..., None]
    real = _textures(10, 7)[..., None]
    config = realism.RealismConfig(size=32, epochs=5, repeats=2)
    metrics = evaluation.evaluate_synthesis(us, us, real, with_deformation=False,
                                            realism_config=config)["metrics"]
    assert len(metrics["realism_per_repeat"]) == 2
    assert metrics["realism"] == pytest.approx(np.mean(metrics["realism_per_repeat"]))
    assert metrics["realism_sd"] >= 0
    assert f"± {metrics['realism_sd']:.4f}" in evaluation.format_table(metrics)
    row = evaluation.format_comparison({"model": metrics})
    assert f"{metrics['realism']:.3f}±{metrics['realism_sd']:.3f}" in row
    single = evaluation.evaluate_synthesis(us, us, real, with_deformation=False,
                                           realism_config=FAST)["metrics"]
    assert "realism_sd" not in single and "realism_per_repeat" not in single
