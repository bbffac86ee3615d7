"""Export the head locator as a TF Serving SavedModel (``usmr export --locator``).

The SavedModel holds the segmenter's inference graph plus the ellipse fit, in TF ops only
(``head_locator_locate.tf_locate``, each pass averaged with its left-right mirror), so TF
Serving returns the ellipse itself. ``usmr.json``
records the input frame and the refusal thresholds (``head_locator.MIN_SCORE`` ...), so
every client applies the same rule. Signatures: see ``head_locator_presets``.

With a refiner (``export_locator(first, refiner=...)``) the same signatures run the
refinement pass after the zoom pass (``head_locator_locate.tf_refine``); ``usmr.json``
records its frame (``refiner``). ``serving_default`` stays the first pass' probability map.
``assign_from_export`` / ``load_locator_export`` read a locator export back into a Keras
``HeadLocator`` (its first pass), by layer and weight name.
"""

import datetime
import json
import pathlib

import keras
import tensorflow as tf

from usmr_tf.atomic import write_text_atomic
from usmr_tf.errors import ConfigError
from usmr_tf.export.metadata import RESEARCH_NOTICE, list_versions
from usmr_tf.export.savedmodel import write_version
from usmr_tf.models.head_locator import head_locator as hl
from usmr_tf.models.head_locator.head_locator_image_converter import HeadLocatorCanonicalConverter
from usmr_tf.models.head_locator.head_locator_locate import tf_locate
from usmr_tf.models.head_locator.head_locator_presets import LOCATOR_FORMAT

ELLIPSE_FIELDS = ["cx", "cy", "a", "b", "angle", "score", "visible"]


def export_version_dir(path):
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    from usmr_tf.export.metadata import list_versions

    versions = list_versions(path)
    if not versions:
        raise ConfigError(f"{path}: not a locator export (no version folder)")
    return path / str(versions[-1])


def assign_from_export(model, path, part="first_pass", new_tail=False):
    """Sets ``model``'s weights from a locator export (``path``: its folder or a version
    folder) by layer and weight name. ``part``: ``"first_pass"`` (the ``serving_default``
    U-Net) or ``"refiner"`` (the refinement pass' U-Net of a version that has one: the
    ``locate_image`` variables that are not the first pass'). ``new_tail``: ``model`` has a
    full-resolution tail the export lacks (``tail_*`` layers, head_locator_backbone); those
    keep their initial values (and the 1x1 head, when the tail's width differs from the
    U-Net's), every other weight must match."""
    version_dir = export_version_dir(path)
    loaded = tf.saved_model.load(str(version_dir))
    first = list(loaded.signatures["serving_default"].variables)
    if part == "first_pass":
        chosen = first
    elif part == "refiner":
        first_refs = {v.ref() for v in first}
        chosen = [v for v in loaded.signatures["locate_image"].variables
                  if v.ref() not in first_refs]
        if not chosen:
            raise ConfigError(f"{version_dir}: this locator version has no refiner")
    else:
        raise ConfigError(f"assign_from_export: part must be first_pass or refiner, not {part!r}")
    source = {"/".join(v.name.split(":")[0].split("/")[-2:]): v for v in chosen}
    targets = {"/".join(v.path.split("/")[-2:]): v for v in model.weights}
    if new_tail:  # the tail's layers, and the 1x1 head when it now reads another width
        fresh = {k for k in targets if k.startswith("tail_") and k not in source}
        fresh |= {k for k in targets if k.startswith("head_logits/") and k in source
                  and tuple(source[k].shape) != tuple(targets[k].shape)}
        targets = {k: v for k, v in targets.items() if k not in fresh}
        source = {k: v for k, v in source.items() if k not in fresh}
    if set(source) != set(targets) or any(tuple(source[k].shape) != tuple(targets[k].shape)
                                          for k in targets):
        raise ConfigError(f"{version_dir}: its locator does not have this model's layers "
                          "(another base_filters / depth / stem_stride / tail_filters)")
    for key, variable in targets.items():
        variable.assign(tf.cast(source[key], variable.dtype))
    return model


def _export_info(path):
    """(version folder, the export's ``usmr.json`` or None, this version's entry in it)."""
    version_dir = export_version_dir(path)
    info_path = version_dir.parent / "usmr.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else None
    return version_dir, info, (info or {}).get("versions", {}).get(version_dir.name, {})


def export_has_refiner(path):
    """Whether a locator export's version (``path``: its folder or a version folder) has a
    refinement pass, from ``usmr.json``."""
    return bool(_export_info(path)[2].get("refiner"))


def load_locator_export(path):
    """A locator export's first pass as a Keras ``HeadLocator`` (its model config from
    ``usmr.json``, its weights by name)."""
    from usmr_tf.models.head_locator.head_locator_training import LOCATOR_DEFAULTS, build_locator

    version_dir, info, meta = _export_info(path)
    if info is None:
        raise ConfigError(f"{version_dir.parent}: not a locator export (no usmr.json)")
    # This version's own first-pass model (its frame included); the top-level input_frame
    # (the latest version's) only for exports that recorded no model.
    own = meta.get("first_pass_model") or meta.get("model") or {}
    frame = info.get("input_frame", {}) if "height" not in own else {}
    config = {**LOCATOR_DEFAULTS["model"], **own, **frame, "stage": "locate"}
    return assign_from_export(build_locator(config), version_dir)


def _mirror_mean(model):
    def predict_fn(x):
        # Test-time flip: the mean of the map and of the map of the mirrored image.
        return 0.5 * (model.probability(x)
                      + tf.reverse(model.probability(tf.reverse(x, [2])), [2]))

    return predict_fn


def locator_functions(model, refiner=None, canonical=None):
    """(predict, locate_image, locate_png) tf.functions of a ``HeadLocator`` [+ its refiner
    and the refiner's ``HeadLocatorCanonicalConverter``]."""
    converter = model.image_converter
    H, W = model.height, model.width
    predict_fn = _mirror_mean(model)
    refine_fn = _mirror_mean(refiner) if refiner is not None else None

    @tf.function(input_signature=[tf.TensorSpec([None, H, W, 1], tf.float32, name="image")])
    def predict(image):
        return {"head_probability": model.probability(image)}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="image")])
    def locate_image(image):
        return {"ellipse": tf_locate(predict_fn, image, converter, refine=refine_fn,
                                     canonical=canonical)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_png_bytes")])
    def locate_png(image_png_bytes):
        def one(encoded):
            grey = tf.io.decode_image(encoded, channels=1, dtype=tf.uint8,
                                      expand_animations=False)
            return tf_locate(predict_fn, tf.cast(grey[..., 0], tf.float32), converter,
                             refine=refine_fn, canonical=canonical)

        return {"ellipse": tf.map_fn(one, image_png_bytes,
                                     fn_output_signature=tf.TensorSpec([7], tf.float32))}

    return predict, locate_image, locate_png


def export_locator(model, out_dir="saved_models", name="fetal_head_locator", version=None,
                   metadata=None, overwrite=False, refiner=None, fill=None):
    """Writes ``<out_dir>/<name>/<version>/`` and updates ``<out_dir>/<name>/usmr.json``.
    ``refiner``: a refinement-pass ``HeadLocator`` (its frame: its height, width and
    ``fill``)."""
    canonical = None
    if refiner is not None:
        if fill is None:
            raise ConfigError("a refiner needs its frame's fill (model.fill of its recipe)")
        canonical = HeadLocatorCanonicalConverter(refiner.height, refiner.width, fill)
    predict, locate_image, locate_png = locator_functions(model, refiner, canonical)
    archive = keras.export.ExportArchive()
    # No archive.track(model): the endpoints capture the variables they use; track() would
    # save every weight a second time (keras-team/keras#23553).
    archive.add_endpoint("serving_default", predict)
    archive.add_endpoint("locate_image", locate_image)
    archive.add_endpoint("locate_png", locate_png)
    version_dir = write_version(out_dir, name, version, overwrite,
                                lambda path: archive.write_out(str(path), verbose=False))
    model_dir, version = version_dir.parent, int(version_dir.name)
    info_path = model_dir / "usmr.json"
    refiner_info = None if canonical is None else {
        "height": canonical.height, "width": canonical.width, "fill": canonical.fill,
        "frame": "the zoom pass' ellipse centred, major axis horizontal, fill x width"}
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info.update({
        "name": name, "format": LOCATOR_FORMAT, "notice": RESEARCH_NOTICE,
        "latest_version": max(list_versions(model_dir)),
        "input_frame": {"height": model.height, "width": model.width,
                        "grey": "g / 127.5 - 1, letterboxed (aspect kept, -1 padding)"},
        "thresholds": {"min_score": hl.MIN_SCORE, "min_major_px": hl.MIN_MAJOR_PX,
                       "min_visible": hl.MIN_VISIBLE},
        "ellipse": ELLIPSE_FIELDS,
        "signatures": {
            "serving_default": {"inputs": {"image": f"float32 [batch, {model.height}, "
                                           f"{model.width}, 1] in [-1, 1]"},
                                "outputs": {"head_probability": "float32, same shape"}},
            "locate_image": {"inputs": {"image": "float32 [h, w] grey levels 0-255"},
                             "outputs": {"ellipse": "float32 [7] " + ",".join(ELLIPSE_FIELDS)}},
            "locate_png": {"inputs": {"image_png_bytes": "string [batch] PNG/JPEG bytes"},
                           "outputs": {"ellipse": "float32 [batch, 7]"}},
        },
    })
    versions = info.setdefault("versions", {})
    versions[str(version)] = {"exported_at": datetime.datetime.now(datetime.timezone.utc)
                              .isoformat(timespec="seconds"), **(metadata or {}),
                              "refiner": refiner_info}
    # The latest version's refinement frame (None: no refiner); each version's entry has its own.
    info["refiner"] = versions.get(str(info["latest_version"]), {}).get("refiner")
    write_text_atomic(info_path, json.dumps(info, indent=2) + "\n")
    return version_dir
