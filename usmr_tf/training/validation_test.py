import csv
import json

import keras
import numpy as np
import pytest

from usmr_tf.training.validation import ValidationCallback, better_than


class _Scaled(keras.Model):
    """A stand-in generator whose diversity we control: `scale * us` (scale 0 = collapsed)."""

    def __init__(self):
        super().__init__()
        self.scale = 1.0
        self.generator_optimizer = keras.optimizers.SGD()
        self.generator_optimizer.build([keras.Variable(0.0)])
        self.w = keras.Variable(1.0)

    def call(self, x, training=None):
        return self.scale * x * self.w


def _sets(n=6, size=32):
    rng = np.random.default_rng(0)
    return (rng.uniform(-1, 1, (n, size, size, 1)).astype("float32"),
            rng.uniform(-1, 1, (n, size, size, 1)).astype("float32"))


def test_logs_every_n_steps_and_keeps_best_only_above_the_floor(tmp_path):
    us, mr = _sets()
    model = _Scaled()
    cb = ValidationCallback(tmp_path, us, mr, every_n_steps=2, diversity_floor=0.5)
    cb.set_model(model)
    cb.on_train_begin()
    for step, scale in [(1, 1.0), (2, 0.1), (3, 1.0), (4, 0.9), (6, 1.0)]:
        model.scale = scale
        model.generator_optimizer.iterations.assign(step)
        cb.on_train_batch_end(0)
    rows = (tmp_path / "validation.csv").read_text().splitlines()
    assert rows[0].startswith("step,diversity,swd") and [r.split(",")[0] for r in rows[1:]] == ["2", "4", "6"]
    divs = [float(r.split(",")[1]) for r in rows[1:]]
    assert divs == pytest.approx([0.1, 0.9, 1.0])
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["best"]["step"] in (4, 6) and best["best"]["diversity"] >= 0.5  # step 2 collapsed
    assert (tmp_path / "best.weights.h5").is_file()
    logs = {}
    cb.on_epoch_end(0, logs)
    assert logs["val_diversity"] == pytest.approx(1.0)


def test_collapsed_run_keeps_no_best_and_a_resumed_run_drops_later_rows(tmp_path):
    us, mr = _sets()
    model = _Scaled()
    model.scale = 0.0
    cb = ValidationCallback(tmp_path, us, mr, every_n_steps=1)
    cb.set_model(model)
    cb.on_train_begin()
    for step in (1, 2, 3):
        model.generator_optimizer.iterations.assign(step)
        cb.on_train_batch_end(0)
    assert json.loads((tmp_path / "best.json").read_text())["best"] is None
    assert not (tmp_path / "best.weights.h5").exists()
    # a run resumed from step 1 rewrites step 2 (rows after it were never backed up)
    cb2 = ValidationCallback(tmp_path, us, mr, every_n_steps=1)
    cb2.set_model(model)
    cb2.on_train_begin()
    model.generator_optimizer.iterations.assign(2)
    cb2.on_train_batch_end(0)
    steps = [r.split(",")[0] for r in (tmp_path / "validation.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2"]


def test_paired_metrics_and_argument_checks(tmp_path):
    us, mr = _sets()
    model = _Scaled()
    cb = ValidationCallback(tmp_path, us, mr, every_n_steps=1, paired_mr=us)
    cb.set_model(model)
    metrics = cb.evaluate()
    assert metrics["psnr"] > 60 and metrics["ssim"] == pytest.approx(1.0)  # output == ground truth
    with pytest.raises(ValueError, match="at least 2"):
        ValidationCallback(tmp_path, us[:1], mr, every_n_steps=1)
    with pytest.raises(ValueError, match="every_n_steps"):
        ValidationCallback(tmp_path, us, mr, every_n_steps=0)


def test_realism_is_logged_and_ranks_the_best_checkpoint(tmp_path):
    us, mr = _sets(n=10)
    model = _Scaled()
    cb = ValidationCallback(tmp_path, us, mr, every_n_steps=1, with_realism=True)
    cb.set_model(model)
    cb.on_train_begin()
    metrics = cb.evaluate()
    assert 0 <= metrics["realism_low"] <= metrics["realism"] <= metrics["realism_high"] <= 1
    # the rule: lowest realism accuracy wins even at a higher SWD; equal accuracy -> lower SWD
    for step, realism, swd in [(1, 0.9, 50.0), (2, 0.7, 80.0), (3, 0.7, 60.0), (4, 0.8, 10.0)]:
        cb._maybe_keep_best(step, {"diversity": 1.0, "swd": swd, "realism": realism})
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["best"]["step"] == 3 and "realism" in best["rule"]
    cb.last = metrics
    logs = {}
    cb.on_epoch_end(0, logs)
    assert logs["val_realism"] == pytest.approx(metrics["realism"])


def test_realism_differences_inside_the_interval_are_ranked_by_swd(tmp_path):
    us, mr = _sets(n=4)
    model = _Scaled()
    model(us)  # built, so its weights can be saved
    cb = ValidationCallback(tmp_path, us, mr, every_n_steps=1, with_realism=True)
    cb.set_model(model)
    cb.on_train_begin()

    def ev(realism, swd):
        return {"diversity": 1.0, "swd": swd, "realism": realism,
                "realism_low": realism - 0.1, "realism_high": realism + 0.1}

    kept = []
    for step, (realism, swd) in enumerate([(0.70, 100.0), (0.65, 120.0), (0.78, 80.0),
                                           (0.90, 10.0), (0.55, 300.0)], start=1):
        cb._maybe_keep_best(step, ev(realism, swd))
        kept.append(json.loads((tmp_path / "best.json").read_text())["best"]["step"])
    # 2: inside 1's interval, higher SWD -> kept 1; 3: inside, lower SWD -> 3;
    # 4: above 3's interval -> kept 3; 5: below 3's interval (0.68) -> 5 at any SWD
    assert kept == [1, 1, 3, 3, 5]
    assert not better_than(ev(0.5, 50.0), ev(0.6, 40.0), with_realism=False)
    assert better_than({"swd": 1.0, "realism": 0.9}, {"swd": 2.0, "realism": 0.9}, True)


def test_realism_repeats_give_the_mean_and_sd(tmp_path):
    us, mr = _sets(n=10)
    cb = ValidationCallback(tmp_path, us, mr, every_n_steps=1, with_realism=True,
                            realism_repeats=2)
    cb.set_model(_Scaled())
    cb.on_train_begin()
    metrics = cb.evaluate()
    assert np.isfinite(metrics["realism_sd"]) and metrics["realism_sd"] >= 0
    assert 0 <= metrics["realism_low"] <= metrics["realism"] <= metrics["realism_high"] <= 1
    cb._record(5, metrics)
    with open(tmp_path / "validation.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert float(row["realism_sd"]) == pytest.approx(metrics["realism_sd"])
    with pytest.raises(ValueError, match="realism_repeats"):
        ValidationCallback(tmp_path, us, mr, every_n_steps=1, realism_repeats=0)
