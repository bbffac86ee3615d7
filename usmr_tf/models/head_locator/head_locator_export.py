"""Export the head locator as a TF Serving SavedModel (``usmr export --locator``).

The SavedModel holds the segmenter's inference graph plus the ellipse fit, in TF ops only
(``head_locator_locate.tf_locate``, each pass averaged with its left-right mirror), so TF
Serving returns the ellipse itself. ``usmr.json``
records the input frame and the refusal thresholds (``head_locator.MIN_SCORE`` ...), so
every client applies the same rule. Signatures: see ``head_locator_presets``.
"""

import datetime
import json

import keras
import tensorflow as tf

from usmr_tf.atomic import write_text_atomic
from usmr_tf.export.metadata import RESEARCH_NOTICE, list_versions
from usmr_tf.export.savedmodel import write_version
from usmr_tf.models.head_locator import head_locator as hl
from usmr_tf.models.head_locator.head_locator_locate import tf_locate
from usmr_tf.models.head_locator.head_locator_presets import LOCATOR_FORMAT

ELLIPSE_FIELDS = ["cx", "cy", "a", "b", "angle", "score", "visible"]


def locator_functions(model):
    """(predict, locate_image, locate_png) tf.functions of a ``HeadLocator``."""
    converter = model.image_converter
    H, W = model.height, model.width

    def predict_fn(x):
        # Test-time flip: the mean of the map and of the map of the mirrored image.
        return 0.5 * (model.probability(x)
                      + tf.reverse(model.probability(tf.reverse(x, [2])), [2]))

    @tf.function(input_signature=[tf.TensorSpec([None, H, W, 1], tf.float32, name="image")])
    def predict(image):
        return {"head_probability": model.probability(image)}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="image")])
    def locate_image(image):
        return {"ellipse": tf_locate(predict_fn, image, converter)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_png_bytes")])
    def locate_png(image_png_bytes):
        def one(encoded):
            grey = tf.io.decode_image(encoded, channels=1, dtype=tf.uint8,
                                      expand_animations=False)
            return tf_locate(predict_fn, tf.cast(grey[..., 0], tf.float32), converter)

        return {"ellipse": tf.map_fn(one, image_png_bytes,
                                     fn_output_signature=tf.TensorSpec([7], tf.float32))}

    return predict, locate_image, locate_png


def export_locator(model, out_dir="saved_models", name="fetal_head_locator", version=None,
                   metadata=None, overwrite=False):
    """Writes ``<out_dir>/<name>/<version>/`` and updates ``<out_dir>/<name>/usmr.json``."""
    predict, locate_image, locate_png = locator_functions(model)
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
                              .isoformat(timespec="seconds"), **(metadata or {})}
    write_text_atomic(info_path, json.dumps(info, indent=2) + "\n")
    return version_dir
