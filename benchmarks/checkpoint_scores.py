"""Does a run's validation curve rank its checkpoints the way held-out MR does? (issue 18)

    .venv/bin/python benchmarks/checkpoint_scores.py RUN [RUN ...] --data ../runs/preset_v3_data \
        [--val-pick spread] [--json scores.json] [--figure curves.png]

For every step of `RUN/validation.csv` that has a checkpoint (`RUN/checkpoints/epochNNNN
.weights.h5`, step = epoch x `training.steps_per_epoch` of `RUN/recipe.yaml`), the model's
inference generator (its EMA when trained with one) synthesizes the data folder's test US and
the output is scored by SWD against the test split's MR and against the left-out MR source
(`mr/heldout.npy`), as `usmr evaluate` scores an export, and by the outline check (whether each
output keeps its US's head: `usmr_tf.metrics.outline`). Printed beside the step's validation
SWD, with the Spearman rank correlation of the validation SWD and each held-out SWD over the
run's checkpoints (1 = the validation curve orders the checkpoints as the held-out MR does).
`--val-pick spread` adds one more column: the run's own validation split re-drawn with that
`data.val_pick` (docs/training.md), scored against the MR the run trains on as validation
does (what the rule would have seen with that split; the run may have trained on those US).
`--figure` draws the curves of every run against the step. `--average-from STEP` also scores
one model made by averaging the inference generator's weights over the run's checkpoints from
STEP on (stochastic weight averaging after the fact), printed and written as `average`.

A diagnostic of the best-checkpoint rule, not a way to choose a checkpoint: picking one on
the test split would leak it. Measures and prints; research numbers, not for diagnosis.
"""

import argparse
import csv
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402


def spearman(a, b):
    """Spearman's rank correlation of two equal-length sequences."""
    return float(spearmanr(a, b)[0])


def checkpoints(run):
    """[(step, validation SWD, checkpoint path)] for the validation steps that have one."""
    from usmr_tf.training.callbacks import PeriodicCheckpoint  # TensorFlow only when scoring

    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    per_epoch = int(recipe["training"]["steps_per_epoch"])
    with open(run / "validation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    found = []
    for row in rows:
        step = int(row["step"])
        path = PeriodicCheckpoint.path(run / "checkpoints", step // per_epoch)
        if step % per_epoch == 0 and path.is_file():
            found.append((step, float(row["swd"]), path))
    return found


def redrawn_validation(run, val_pick):
    """(validation US, SWD reference MR) of `run` with `data.val_pick` = `val_pick`, as the
    trainer builds them for its validation callback."""
    from usmr_tf.training.recipe import load_recipe
    from usmr_tf.training.trainer import _validation_set, load_splits

    recipe = load_recipe(run / "recipe.yaml", [f"data.val_pick={val_pick}"])
    train, val = load_splits(recipe["data"])
    return _validation_set(val, train)[:2]


def held_out_scores(synth, us, references):
    """SWD of `synth` (made from the test `us`) against each reference MR set, and its outline."""
    from usmr_tf.metrics.outline import outline_scores
    from usmr_tf.metrics.swd import swd

    scores = {name: swd(synth, mr, seed=0)["mean"] for name, mr in references.items()}
    scores["test_outline"] = float(np.nanmean(outline_scores(us, synth)))
    return scores


def score_run(run, us, references, val_pick=None, average_from=None):
    from usmr_tf.cli.export import load_checkpoint
    from usmr_tf.export.savedmodel import inference_generator
    from usmr_tf.export.synthesis import predict_batched
    from usmr_tf.metrics.swd import swd

    redrawn = redrawn_validation(run, val_pick) if val_pick else None
    rows, averaged, generator = [], [], None
    for step, val_swd, path in checkpoints(run):
        model = load_checkpoint(path)

        def generate(x, model=model):
            return model(x, training=False)

        synth = predict_batched(generate, us)
        row = {"step": step, "validation_swd": val_swd, **held_out_scores(synth, us, references)}
        if average_from is not None and step >= average_from:  # kept for --average-from
            generator = inference_generator(model)
            averaged.append((step, generator.get_weights()))
        if redrawn is not None:
            val_synth = predict_batched(generate, redrawn[0])
            row[f"validation_{val_pick}_swd"] = swd(val_synth, redrawn[1], seed=0)["mean"]
        rows.append(row)
        print(f"{run.name} step {step:5d}: " + "  ".join(
            f"{name} {value:.3f}" if name.endswith("outline") else f"{name} {value:6.1f}"
            for name, value in row.items() if name != "step"), flush=True)
    out = {"checkpoints": rows}
    if averaged:  # the last kept generator, every weight averaged over the kept checkpoints
        generator.set_weights([np.mean(ws, axis=0) for ws in zip(*(w for _, w in averaged))])
        synth = predict_batched(lambda x: generator(x, training=False), us)
        out["average"] = {"steps": [step for step, _ in averaged],
                          **held_out_scores(synth, us, references)}
        print(f"{run.name} average of steps {out['average']['steps']}: " + "  ".join(
            f"{k} {v:.3f}" for k, v in out["average"].items() if k != "steps"), flush=True)
    if len(rows) > 2:
        curves = ["validation_swd"] + ([f"validation_{val_pick}_swd"] if val_pick else [])
        out["spearman"] = {f"{curve}~{name}": spearman([r[curve] for r in rows],
                                                       [r[name] for r in rows])
                           for curve in curves for name in references}
    return out


def figure(results, runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.6), squeeze=False)
    labels = {"validation_swd": "validation US vs the MR it trains on",
              "validation_spread_swd": "spread validation US vs the MR it trains on",
              "test_swd": "test US vs the test split's MR",
              "heldout_swd": "test US vs the left-out MR source"}
    for axis, run in zip(ax[0], runs):
        rows = results[str(run)]["checkpoints"]
        steps = [r["step"] for r in rows]
        for key, label in labels.items():
            if rows and key in rows[0]:
                axis.plot(steps, [r[key] for r in rows], marker="o", ms=3, label=label)
        axis.set_title(run.name, fontsize=10)
        axis.set_xlabel("optimizer step")
        axis.set_ylabel("SWD x1e3 (lower = closer to that MR)")
        axis.set_yscale("log")
        axis.legend(fontsize=7)
    fig.suptitle("SWD of each checkpoint. Research numbers, not for diagnosis.", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="+", help="`usmr train` run folders")
    parser.add_argument("--data", required=True,
                        help="a `usmr prepare` folder with us/test.npy, mr/test.npy, mr/heldout.npy")
    parser.add_argument("--val-pick", default=None, choices=["tail", "spread"],
                        help="also score the run's validation split re-drawn this way")
    parser.add_argument("--average-from", type=int, default=None, metavar="STEP",
                        help="also score the weights averaged over the checkpoints from STEP on")
    parser.add_argument("--json", default=None, help="also write the scores as JSON")
    parser.add_argument("--figure", default=None, help="also draw the curves (PNG)")
    args = parser.parse_args(argv)
    data = pathlib.Path(args.data)
    runs = [pathlib.Path(r) for r in args.run]
    for run in runs:
        if not (run / "validation.csv").is_file() or not (run / "recipe.yaml").is_file():
            parser.error(f"{run}: not a `usmr train` run with validation (no validation.csv "
                         "or recipe.yaml)")
    us = np.load(data / "us" / "test.npy")
    references = {"test_swd": np.load(data / "mr" / "test.npy")}
    if (data / "mr" / "heldout.npy").is_file():
        references["heldout_swd"] = np.load(data / "mr" / "heldout.npy")
    results = {"data": str(data), "n_us": int(len(us)),
               "notice": "research numbers, not for diagnosis"}
    for run in runs:
        results[str(run)] = score_run(run, us, references, args.val_pick, args.average_from)
        if "spearman" in results[str(run)]:
            print(f"{run}: Spearman rank correlation " + ", ".join(
                f"{k} {v:+.2f}" for k, v in results[str(run)]["spearman"].items()))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.figure:
        figure(results, runs, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
