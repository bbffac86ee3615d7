"""`ValidationCallback`: collapse and quality measured during training, every N steps.

On a fixed validation set (the run's validation split, never the test split) it synthesizes
MR and logs, to TensorBoard (`logs/validation`), to `validation.csv` in the run folder and to
the epoch logs (so `history.csv` has them as `val_diversity`, `val_swd`, ...):

- `diversity`: `usmr_tf.metrics.diversity.output_diversity` (0 = one output for every input,
  the mode collapse of issue 11; ~0.6-0.7 for a set of real MR slices);
- `swd`: sliced Wasserstein distance to the real MR the run knows (training + validation MR);
- `realism` (optional, `with_realism`; ~5-15 s on 2 cores): the realism test of
  `usmr_tf.metrics.realism` (a small CNN telling the real MR from the outputs; 0.5 = cannot
  tell), with `realism_low` / `realism_high` its 95 % interval; with `realism_repeats` > 1
  the mean over that many seeds, and `realism_sd` their standard deviation;
- `deformation` (optional, slow): the FFD deformation score at low resolution;
- `psnr`, `ssim`: against the paired ground truth, when the set has one (phantoms).

Best checkpoint rule (stated in docs/training.md): among evaluations whose diversity is at
least `diversity_floor` (0.5 by default), the one with the lowest SWD wins. With the realism
test on, evaluations are taken in order and a new one replaces the best when its realism
accuracy is below the best's 95 % interval (clearly more realistic), or inside that interval
(the test cannot tell them apart) with a lower SWD (`better_than`). Its weights go to
`best.weights.h5` and its step and metrics to `best.json` (both written atomically). A run
that never reaches the floor keeps no best checkpoint and says so in `best.json`.
Research images, not for diagnosis.
"""

import csv
import json
import math
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

from usmr_tf.atomic import atomic_path, write_text_atomic
from usmr_tf.metrics import image_metrics, swd
from usmr_tf.metrics.diversity import output_diversity

FIELDS = ("step", "diversity", "swd", "realism", "realism_low", "realism_high", "deformation",
          "psnr", "ssim", "realism_sd")


REALISM_RULE = ("lowest realism-test accuracy, where the test tells two evaluations apart (below"
                " the best's 95 % interval), else lowest SWD")


def better_than(candidate, best, with_realism):
    """Whether evaluation `candidate` replaces `best` under the best-checkpoint rule.

    Without the realism test: a lower SWD. With it: a realism accuracy below `best`'s 95 %
    interval (`realism_low`) wins outright; one inside the interval (not resolved by the
    test's sample) wins only with a lower SWD; one above it never does. A best without an
    interval (an older `best.json`) counts as an interval of one point.
    """
    if not with_realism:
        return candidate["swd"] < best["swd"]
    realism = candidate.get("realism", math.inf)
    low = best.get("realism_low", best.get("realism", math.inf))
    high = best.get("realism_high", best.get("realism", math.inf))
    if realism < low:
        return True
    return realism <= high and candidate["swd"] < best["swd"]


class ValidationCallback(keras.callbacks.Callback):
    """Validation metrics every `every_n_steps` optimizer steps; keeps the best checkpoint.

    Args:
        out_dir: run folder (`validation.csv`, `best.weights.h5`, `best.json`).
        us: `[N, H, W, 1]` validation US (N >= 2).
        real_mr: `[M, H, W, 1]` real MR, the SWD reference.
        every_n_steps: evaluation period in optimizer steps (> 0).
        paired_mr: optional ground truth `[N, H, W, 1]` (phantoms).
        with_deformation: also compute the (slow) deformation score on up to 8 images.
        with_realism: also run the realism test (and rank checkpoints by it).
        realism_repeats: the realism test's repeats (`realism.RealismConfig.repeats`).
        diversity_floor: the best-checkpoint rule's minimum diversity.
        log_dir: TensorBoard folder (default `out_dir/logs`).
    """

    def __init__(self, out_dir, us, real_mr, every_n_steps, paired_mr=None,
                 with_deformation=False, diversity_floor=0.5, log_dir=None, batch_size=32,
                 with_realism=False, realism_repeats=1):
        super().__init__()
        self.out_dir = pathlib.Path(out_dir)
        self.us = np.asarray(us, np.float32)
        self.real_mr = np.asarray(real_mr, np.float32)
        self.paired_mr = None if paired_mr is None else np.asarray(paired_mr, np.float32)
        if len(self.us) < 2:
            raise ValueError("validation needs at least 2 US images")
        self.every_n_steps = int(every_n_steps)
        if self.every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.with_deformation = bool(with_deformation)
        self.with_realism = bool(with_realism)
        self.realism_repeats = int(realism_repeats)
        if self.realism_repeats < 1:
            raise ValueError(f"realism_repeats must be >= 1, got {realism_repeats}")
        self.diversity_floor = float(diversity_floor)
        self.log_dir = pathlib.Path(log_dir) if log_dir else self.out_dir / "logs"
        self.batch_size = int(batch_size)
        self.last = {}
        self._writer = None
        self._best = None

    # -- paths / state --------------------------------------------------------------------
    @property
    def csv_path(self):
        return self.out_dir / "validation.csv"

    @property
    def best_path(self):
        return self.out_dir / "best.json"

    def _step(self):
        opt = getattr(self.model, "generator_optimizer", None) or self.model.optimizer
        return int(opt.iterations.numpy())

    def on_train_begin(self, logs=None):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._best = None
        if self.best_path.is_file():
            try:
                self._best = json.loads(self.best_path.read_text()).get("best")
            except ValueError:
                self._best = None

    # -- evaluation -----------------------------------------------------------------------
    def synthesize(self):
        outs = [np.asarray(self.model(self.us[i:i + self.batch_size], training=False), np.float32)
                for i in range(0, len(self.us), self.batch_size)]
        return np.concatenate(outs)

    def evaluate(self):
        synth = self.synthesize()
        if not np.all(np.isfinite(synth)):
            return {"diversity": math.nan, "swd": math.nan}
        metrics = {
            "diversity": output_diversity(self.us, synth),
            "swd": swd.swd(synth, self.real_mr, seed=0)["mean"],
        }
        if self.with_realism:
            from usmr_tf.metrics import realism

            test = realism.realism_test(self.real_mr, synth,
                                        realism.RealismConfig(repeats=self.realism_repeats))
            metrics.update(realism=test["accuracy"], realism_low=test["ci_low"],
                           realism_high=test["ci_high"])
            if test["accuracy_sd"] is not None:
                metrics["realism_sd"] = test["accuracy_sd"]
        if self.with_deformation:
            from usmr_tf.metrics import deformation

            n = min(8, len(synth))
            metrics["deformation"] = deformation.deformation_scores(
                synth[:n], self.real_mr, top_k=1)["mean"]
        if self.paired_mr is not None:
            metrics["psnr"] = image_metrics.psnr(synth, self.paired_mr)
            metrics["ssim"] = image_metrics.ssim(synth, self.paired_mr)
        return metrics

    def _record(self, step, metrics):
        # validation.csv: rows after `step` (left by a run killed after them) are dropped.
        rows = []
        if self.csv_path.is_file():
            with open(self.csv_path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) < step]
        rows.append({"step": step, **{k: metrics.get(k, "") for k in FIELDS[1:]}})
        text = ",".join(FIELDS) + "\n" + "".join(
            ",".join(str(r.get(k, "")) for k in FIELDS) + "\n" for r in rows)
        write_text_atomic(self.csv_path, text)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.fspath(self.log_dir / "validation"))
        with self._writer.as_default():
            for name, value in metrics.items():
                tf.summary.scalar(f"validation/{name}", value, step=step)
        self._writer.flush()

    def _maybe_keep_best(self, step, metrics):
        ok = metrics["diversity"] >= self.diversity_floor and math.isfinite(metrics["swd"])
        if ok and (self._best is None or better_than(metrics, self._best, self.with_realism)):
            with atomic_path(self.out_dir / "best.weights.h5") as tmp:
                self.model.save_weights(os.fspath(tmp))
            self._best = {"step": step, **metrics}
        ranked = REALISM_RULE if self.with_realism else "lowest SWD"
        rule = (f"{ranked} among evaluations with diversity >= {self.diversity_floor}"
                " (validation split)")
        write_text_atomic(self.best_path, json.dumps(
            {"rule": rule, "best": self._best, "last": {"step": step, **metrics}}, indent=2) + "\n")

    def run(self, step):
        metrics = self.evaluate()
        self.last = metrics
        self._record(step, metrics)
        self._maybe_keep_best(step, metrics)
        return metrics

    # -- hooks ----------------------------------------------------------------------------
    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step % self.every_n_steps == 0:
            self.run(step)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # history.csv columns (NaN until the first evaluation)
            for name in ("diversity", "swd") + (("realism",) if self.with_realism else ()):
                logs[f"val_{name}"] = float(self.last.get(name, math.nan))

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
