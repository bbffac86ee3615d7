"""`usmr train --recipe recipes/NAME.yaml [--set key=value ...] [--strategy ...] [--out DIR]`."""

import pathlib

from usmr_tf.training.recipe import STRATEGIES


def register(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a model from a recipe with model.fit",
        description="Train a model from a YAML recipe with Keras' model.fit. A killed run "
        "started again with the same --out resumes from its last finished epoch. "
        "Outputs are research images, not diagnoses.",
    )
    parser.add_argument("--recipe", required=True, type=pathlib.Path,
                        help="YAML recipe, e.g. recipes/phantom_quick.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set training.epochs=3 (repeatable)")
    parser.add_argument("--strategy", choices=STRATEGIES, default=None,
                        help="distribution strategy (default: the recipe's training.strategy); "
                        "multiworker reads the cluster from TF_CONFIG")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="run folder (default: runs/<recipe name>)")
    parser.set_defaults(func=run)
    return parser


def run(args):
    from usmr_tf.models.head_locator.head_locator_training import is_locator_recipe

    if is_locator_recipe(args.recipe):  # `task: locate`: the fetal head locator
        from usmr_tf.models.head_locator.head_locator_training import (
            load_locator_recipe, train_locator)

        recipe = load_locator_recipe(args.recipe, args.overrides)
        out = args.out or pathlib.Path("runs") / recipe["name"]
        train_locator(recipe, out)
        print(f"usmr train: finished {recipe['name']} ({recipe['training']['epochs']} epochs); "
              f"outputs in {out}")
        return 0
    from usmr_tf.training.recipe import load_recipe
    from usmr_tf.training.trainer import train

    recipe = load_recipe(args.recipe, args.overrides)
    out = args.out or pathlib.Path("runs") / recipe["name"]
    result = train(recipe, out, strategy=args.strategy)
    print(f"usmr train: finished {recipe['name']} (epochs {result.initial_epoch}->"
          f"{recipe['training']['epochs']}); outputs in {result.out_dir}")
    return 0
