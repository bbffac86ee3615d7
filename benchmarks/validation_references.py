"""Reference rows for a run's validation curves: the same metrics on the same validation set.

`ValidationCallback` (usmr_tf/training/validation.py) scores a run's outputs on its validation
split every N steps. To read those curves one needs the two references scored the same way:

- `identity`: the validation US passed through (what a model that does nothing scores);
- `real_mr`: the validation split's real MR slices in place of outputs, against the training
  MR only (real MR of other slices / subjects: the floor);
- with `--model NAME=PATH` (repeatable): an exported model (`saved_models/NAME[/VERSION]`)
  scored on the same validation set, e.g. the shipped version a run is meant to replace.

    .venv/bin/python benchmarks/validation_references.py RUN [--deformation] \
        [--model v2=saved_models/fetal_hc18_v2/2] [--out RUN/validation_references.json]

RUN is a `usmr train` run folder (its `recipe.yaml` gives the data). Prints JSON; feed the
values to `plot_validation.py --identity-* / --real-*`. Measures and prints; research numbers,
not for diagnosis.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402


class _PassThrough(keras.Model):
    def call(self, x, training=None):
        return x


class _Exported:
    """An exported model called the way ValidationCallback calls a training model."""

    def __init__(self, path):
        from usmr_tf.export.runtimes import SavedModelRunner

        self.runner = SavedModelRunner(path)

    def __call__(self, x, training=False):
        return self.runner(np.asarray(x, np.float32))


def references(run, with_deformation=False, models=()):
    from usmr_tf.training import trainer
    from usmr_tf.training.recipe import load_recipe
    from usmr_tf.training.validation import ValidationCallback

    recipe = load_recipe(pathlib.Path(run) / "recipe.yaml")
    train, val = trainer.load_splits(recipe["data"])
    us, real_mr, _ = trainer._validation_set(val, train)
    out = {"n_us": int(len(us)), "n_real_mr": int(len(real_mr))}
    with tempfile.TemporaryDirectory() as tmp:
        rows = {"identity": (us, real_mr, _PassThrough())}
        if len(val.mr) >= 2:
            rows["real_mr"] = (val.mr, train.mr, _PassThrough())
        for name, path in models:
            rows[name] = (us, real_mr, _Exported(path))
        for name, (images, reference, model) in rows.items():
            cb = ValidationCallback(tmp, images, reference, every_n_steps=1,
                                    with_deformation=with_deformation, with_realism=True)
            cb.set_model(model)  # evaluate() only calls it on a batch
            out[name] = {k: float(v) for k, v in cb.evaluate().items()}
            out[name]["n"] = int(len(images))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--deformation", action="store_true", help="also the (slow) FFD score")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="also score this exported model on the validation set")
    parser.add_argument("--out", default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    models = []
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--model {item!r}: expected NAME=PATH")
        models.append((name, path))
    result = references(args.run, args.deformation, models)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
