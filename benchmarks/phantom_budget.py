"""Paired phantoms at an equal step budget: CycleGAN vs the full model vs the shipped variant.

Trains each column with `usmr_tf.evaluation.reproduce.train_column` under one `Budget` (same
steps, batch, size, base filters, seed) and scores it on the same held-out phantoms against
their paired ground truth (PSNR, SSIM), with diversity and SWD, plus the identity row (US
passed through). Columns: `cyclegan`, `ours` (the paper's objective), `ours_da_tc` (`ours`
+ DiffAugment translation and cutout: preset version 2's configuration), `ours_da_tc_ema`
(that + an EMA of the generator's weights, 0.999, used for inference), `ours_da_tc_skip1`
(that without decoder-C's full-resolution skip, `model.mr_skip_drop: 1`), `preset_v3` (the
model section of `recipes/preset_fetal_hc18_v3.yaml`: that + lambda_rec 5) and
`ours_da_tc_ema_decay` (`ours_da_tc_ema` with both learning rates constant for the first half
of the steps, then linearly to 0: the long run's schedule). Recipes are copied
from `recipes/` with `training.mixed_precision` set (`--precision`); the budget's overrides
(steps, size, base filters, seed) apply to every column. `--seed` draws other phantoms
(training and test) and another initialisation: the spread of a column over seeds.

    .venv/bin/python benchmarks/phantom_budget.py --steps 2000 --size 64 --out /tmp/ph2000.json

Measures and prints; research numbers on synthetic phantoms, not for diagnosis.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import yaml  # noqa: E402

from usmr_tf.evaluation import reproduce as rp  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = {  # column -> (recipe in recipes/, model overrides)
    "cyclegan": ("cyclegan", {}),
    "ours": ("ours", {}),
    "ours_da_tc": ("ours_da", {"diff_augment": "translation,cutout"}),
    "ours_da_tc_ema": ("ours_da", {"diff_augment": "translation,cutout", "ema_decay": 0.999}),
    "ours_da_tc_skip1": ("ours_da", {"diff_augment": "translation,cutout", "mr_skip_drop": 1}),
    "preset_v3": ("ours_da", "preset_fetal_hc18_v3"),  # the preset recipe's model section
}
COLUMNS["ours_da_tc_ema_decay"] = COLUMNS["ours_da_tc_ema"]  # + TRAINING's schedule
# column -> training overrides for a budget of `steps` (the long run's schedule: both learning
# rates constant for the first half, then linearly to 0)
TRAINING = {"ours_da_tc_ema_decay": lambda steps: {"lr_decay_start": steps // 2,
                                                   "lr_decay_steps": steps - steps // 2}}
KEYS = ("psnr", "ssim", "diversity", "swd")


def write_recipes(folder, precision, steps):
    for column, (recipe, model) in COLUMNS.items():
        data = yaml.safe_load((REPO / "recipes" / f"{recipe}.yaml").read_text())
        data["name"] = column
        if isinstance(model, str):
            model = yaml.safe_load((REPO / "recipes" / f"{model}.yaml").read_text())["model"]
        data["model"].update(model)
        data.setdefault("training", {})["mixed_precision"] = precision
        data["training"].update(TRAINING.get(column, lambda _: {})(steps))
        (folder / f"{column}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0,
                        help="phantoms' and training's seed (default 0: the documented runs)")
    parser.add_argument("--precision", default="mixed_bfloat16",
                        choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--columns", nargs="+", default=list(COLUMNS), choices=list(COLUMNS))
    parser.add_argument("--work-dir", default=None, help="training runs (default: a temp folder)")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    budget = rp.Budget(steps=args.steps, image_size=args.size, seed=args.seed)
    ev = rp.phantom_eval_set(budget, n_eval=32, n_reference=96)
    out = {"seed": args.seed, "steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        recipes, work = pathlib.Path(tmp) / "recipes", pathlib.Path(args.work_dir or tmp)
        recipes.mkdir()
        write_recipes(recipes, args.precision, args.steps)
        for column in args.columns:
            synth, info = rp.train_column(column, budget, ev, work / column, recipes_dir=recipes)
            res, _ = rp.score_columns({column: synth}, ev, with_deformation=False)
            out[column] = {k: res[column].get(k) for k in KEYS}
            out[column]["train_seconds"] = info["train_seconds"]
            print(column, out[column], flush=True)
    ident, _ = rp.score_columns({"identity": ev.us}, ev, with_deformation=False)
    out["identity"] = {k: ident["identity"].get(k) for k in KEYS}
    print(json.dumps(out, indent=1))
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
