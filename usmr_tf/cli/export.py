"""`usmr export`: a trained `.keras` model -> TF Serving SavedModel (inference graph only).

    usmr export --checkpoint runs/ours/model.keras --name ours [--version N] [--out saved_models]

Writes ``<out>/<name>/<version>/`` (serving_default + predict_png signatures), ``usmr.json``
and ``MODEL_CARD.md``. When the checkpoint sits in a `usmr train` run folder, its
``recipe.yaml`` fills the model card (model, data source, image size).

A checkpoint of a head locator run (recipe ``task: locate``) exports the locator
(signatures serving_default, locate_image, locate_png; ``usmr_tf.models.head_locator``)::

    usmr export --checkpoint runs/head_locator/best.weights.h5 --name fetal_head_locator

A refine run (``model.stage: refine``) exports one locator: its ``model.first_pass`` export's
passes plus this refinement pass (docs/locator.md)::

    usmr export --checkpoint runs/head_locator_refiner/best.weights.h5 --name fetal_head_locator

``--raw-pipeline`` composes a locator export and a synthesis export into one SavedModel whose
``predict_raw_png`` signature takes a raw PNG and returns the MR in its frame and the ellipse
(``usmr_tf.export.raw_pipeline``)::

    usmr export --raw-pipeline --locator saved_models/fetal_head_locator \
        --synthesis saved_models/fetal_hc18_v2 --name fetal_hc18_v2_raw
"""

import pathlib

from usmr_tf.errors import DataError


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export the inference graph as a TF Serving SavedModel",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--checkpoint", default=None,
                        help="trained model: a .keras file, or a .weights.h5 file of a "
                             "`usmr train` run (e.g. RUN/best.weights.h5: the model is built "
                             "from RUN/recipe.yaml)")
    parser.add_argument("--name", required=True, help="model name (TF Serving MODEL_NAME)")
    parser.add_argument("--version", type=int, default=None,
                        help="version number (default: one more than the latest)")
    parser.add_argument("--out", default="saved_models", help="base folder (default saved_models)")
    parser.add_argument("--slice-axis", type=int, choices=(0, 1, 2), default=None,
                        help="RAS axis volumes are sliced along (default: recipe's, else 2)")
    parser.add_argument("--training-data", default=None,
                        help="one line on the training data, for usmr.json and the model card")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    parser.add_argument("--raw-pipeline", action="store_true",
                        help="compose --locator and --synthesis exports into one raw-PNG model")
    parser.add_argument("--locator", default=None, help="with --raw-pipeline: locator export")
    parser.add_argument("--synthesis", default=None, help="with --raw-pipeline: synthesis export")
    parser.set_defaults(func=run)
    return parser


def _run_recipe(checkpoint):
    """The `recipe.yaml` of the run a checkpoint belongs to: beside it, or one folder up for a
    `.weights.h5` in `RUN/checkpoints/`; None if there is none."""
    candidates = [checkpoint.parent / "recipe.yaml"]
    if checkpoint.name.endswith(".weights.h5"):
        candidates.append(checkpoint.parent.parent / "recipe.yaml")
    return next((p for p in candidates if p.is_file()), None)


def _recipe_metadata(checkpoint):
    """usmr.json fields from the run's ``recipe.yaml`` next to the checkpoint (or one folder
    up, for ``checkpoints/*.weights.h5``), if any."""
    recipe_path = _run_recipe(checkpoint)
    if recipe_path is None:
        return {}
    import yaml

    try:
        recipe = yaml.safe_load(recipe_path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    data, model = recipe.get("data") or {}, recipe.get("model") or {}
    info = {"model": model.get("name"), "config": {"recipe": recipe.get("name"), "model": model}}
    source = data.get("source")
    if source:
        info["training_data"] = f"{source} (recipe {recipe.get('name', recipe_path)})"
    if "slice_axis" in data:
        info["slice_axis"] = int(data["slice_axis"])
    return {k: v for k, v in info.items() if v is not None}


def _load_weights_file(checkpoint):
    """A `.weights.h5` of a `usmr train` run: the model is built from the run's `recipe.yaml`
    (beside the file, or one folder up for `checkpoints/epochNNNN.weights.h5`)."""
    from usmr_tf.errors import UsmrError
    from usmr_tf.training.recipe import load_recipe
    from usmr_tf.training.trainer import build_model

    recipe_path = _run_recipe(checkpoint)
    if recipe_path is None:
        raise DataError("a .weights.h5 checkpoint needs its run's recipe.yaml (beside it or "
                        "one folder up)", checkpoint)
    try:
        recipe = load_recipe(recipe_path)
    except UsmrError as exc:
        raise DataError(f"cannot read the run's recipe: {exc}", recipe_path) from None
    model = build_model(recipe["model"], recipe["data"]["image_size"])
    try:
        model.load_weights(str(checkpoint))
    except Exception as exc:  # noqa: BLE001 - truncated / foreign h5, other architecture
        raise DataError(f"cannot load the weights: {type(exc).__name__}: {exc}",
                        checkpoint) from None
    return model


def load_checkpoint(checkpoint):
    """Loads a `.keras` file saved by `usmr train` (custom objects registered by usmr_tf.models),
    or a `.weights.h5` of a run folder (best.weights.h5, final.weights.h5, checkpoints/...)."""
    checkpoint = pathlib.Path(checkpoint)
    if not checkpoint.exists():
        raise DataError("no such file", checkpoint)
    if checkpoint.name.endswith(".weights.h5"):
        return _load_weights_file(checkpoint)
    if checkpoint.suffix != ".keras":
        raise DataError("expected a .keras model file or a run's .weights.h5 (saved by "
                        "`usmr train`)", checkpoint)
    import keras

    import usmr_tf.models  # noqa: F401 - registers the model classes for deserialisation

    try:
        return keras.saving.load_model(str(checkpoint), compile=False)
    except Exception as exc:  # corrupt zip, unknown class, ...
        raise DataError(f"cannot load the model: {type(exc).__name__}: {exc}", checkpoint) from None


def _export_locator(args, checkpoint, recipe_path):
    from usmr_tf.models.head_locator.head_locator_export import export_locator
    from usmr_tf.models.head_locator.head_locator_training import (
        build_locator, load_locator_recipe)

    recipe = load_locator_recipe(recipe_path)
    model = build_locator(recipe["model"])
    model.load_weights(str(checkpoint))
    metadata = {"checkpoint": str(checkpoint), "recipe": recipe["name"], "model": recipe["model"]}
    refiner, fill = None, None
    if recipe["model"]["stage"] == "refine":  # one locator: the first pass' export + this refiner
        from usmr_tf.errors import ConfigError
        from usmr_tf.models.head_locator.head_locator_export import load_locator_export

        first_pass = recipe["model"]["first_pass"]
        if not first_pass:
            raise ConfigError(f"{recipe_path}: a refine recipe needs model.first_pass (the "
                              "locator export it refines)")
        refiner, fill = model, recipe["model"]["fill"]
        model = load_locator_export(first_pass)
        from usmr_tf.models.head_locator.head_locator_export import export_version_dir

        metadata["first_pass"] = str(export_version_dir(first_pass))
        metadata["first_pass_model"] = {"base_filters": model.backbone.base_filters,
                                        "depth": model.backbone.depth,
                                        "stem_stride": model.backbone.stem_stride,
                                        "height": model.height, "width": model.width}
    version_dir = export_locator(model, args.out, args.name, args.version, metadata,
                                 overwrite=args.overwrite, refiner=refiner, fill=fill)
    print(f"exported {version_dir} (signatures serving_default, locate_image, locate_png); "
          f"metadata {version_dir.parent / 'usmr.json'}")
    return 0


def _export_raw(args):
    from usmr_tf.errors import ConfigError
    from usmr_tf.export.raw_pipeline import export_raw_pipeline
    from usmr_tf.export.runtimes import SavedModelRunner
    from usmr_tf.models.head_locator.head_locator_presets import LocatorRunner

    if not (args.locator and args.synthesis):
        raise ConfigError("--raw-pipeline needs --locator and --synthesis exports")
    locator = LocatorRunner(args.locator)
    synthesis = SavedModelRunner(args.synthesis)
    version_dir = export_raw_pipeline(
        locator.model_dir / str(locator.version), synthesis.model_dir / str(synthesis.version),
        args.out, args.name, locator.thresholds, synthesis.image_size, version=args.version,
        overwrite=args.overwrite,
        sources={"locator": f"{locator.model_dir.name} v{locator.version}",
                 "synthesis": f"{synthesis.model_dir.name} v{synthesis.version}"})
    print(f"exported {version_dir} (signature predict_raw_png); "
          f"metadata {version_dir.parent / 'usmr.json'}")
    return 0


def run(args):
    from usmr_tf.errors import ConfigError
    from usmr_tf.export import export_savedmodel

    if args.raw_pipeline:
        return _export_raw(args)
    if args.checkpoint is None:
        raise ConfigError("--checkpoint is required (or --raw-pipeline)")
    checkpoint = pathlib.Path(args.checkpoint)
    recipe_path = _run_recipe(checkpoint)
    from usmr_tf.models.head_locator.head_locator_training import is_locator_recipe

    if recipe_path is not None and is_locator_recipe(recipe_path):
        return _export_locator(args, checkpoint, recipe_path)
    model = load_checkpoint(checkpoint)
    metadata = {"checkpoint": str(checkpoint), **_recipe_metadata(checkpoint)}
    metadata.setdefault("model", type(model).__name__)
    if args.slice_axis is not None:
        metadata["slice_axis"] = args.slice_axis
    if args.training_data:
        metadata["training_data"] = args.training_data
    version_dir = export_savedmodel(model, args.out, args.name, args.version, metadata,
                                    overwrite=args.overwrite)
    print(f"exported {version_dir} (signatures serving_default, predict_png); "
          f"metadata {version_dir.parent / 'usmr.json'}")
    return 0
