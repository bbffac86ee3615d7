"""Export the inference graph (US -> MR) as a SavedModel laid out for TF Serving.

"The testing phase only takes an US scan as input without any discriminators and the reverse
path" (paper §3.1): only ``model.generator`` is tracked, so the SavedModel holds the anatomy
encoder, MR decoder and attention variables and nothing else (checked by name before writing).
"""

import json
import pathlib
import re

import keras
import tensorflow as tf

from usmr_tf.atomic import replace_dir, write_text_atomic
from usmr_tf.errors import ConfigError
from usmr_tf.export import metadata as meta
from usmr_tf.export.preprocessing import decode_us_batch, encode_mr_batch

# Variable names that must never reach an inference export: discriminators, EdgeNet, the
# reverse (MR -> US) path (back_encoder / back_decoder) and the R-US output head.
TRAINING_ONLY_PATTERN = re.compile(
    r"discriminator|edge_?net|reverse|cycle|back_(en|de)coder|us_decoder_top", re.IGNORECASE
)


def inference_generator(generator_or_model):
    """The US -> MR ``keras.Model``: the model's ``inference_generator`` (its moving average of
    the generator when trained with ``ema_decay``), else ``model.generator``, else the model."""
    generator = (getattr(generator_or_model, "inference_generator", None)
                 or getattr(generator_or_model, "generator", None) or generator_or_model)
    if not isinstance(generator, keras.Model):
        raise ConfigError(
            f"cannot export {type(generator_or_model).__name__}: expected a keras.Model "
            "or a usmr_tf model with a `.generator`"
        )
    return generator


def _image_size(generator, image_size=None):
    """S of the generator's ``[B, S, S, 1]`` input: argument, ``.image_size``, or functional input."""
    image_size = image_size or getattr(generator, "image_size", None)
    if getattr(generator, "inputs", None):  # functional models know their input shape
        shape = tuple(generator.input_shape)
    else:
        shape = (None, image_size, image_size, 1)
    height, width = shape[1], shape[2]
    if height is None or width is None:
        height = width = image_size
    if height is None or height != width or shape[-1] != 1:
        raise ConfigError(
            f"generator input shape {shape}: expected [batch, S, S, 1] with a fixed S "
            "(pass image_size= for a fully convolutional generator)"
        )
    return int(height)


def check_inference_variables(variables):
    """Raise ``ConfigError`` if any variable belongs to a training-only sub-network."""
    bad = [v.path if hasattr(v, "path") else v.name for v in variables]
    bad = [name for name in bad if TRAINING_ONLY_PATTERN.search(name)]
    if bad:
        raise ConfigError(
            f"refusing to export training-only variables ({len(bad)}): {', '.join(bad[:5])}"
        )


def build_export_archive(generator, image_size):
    """A ``keras.export.ExportArchive`` with the ``serving_default`` and ``predict_png`` endpoints."""
    archive = keras.export.ExportArchive()
    # No archive.track(generator): the endpoints capture (and so save) exactly the variables
    # they use. track() would save every weight a second time under `variables/`
    # (keras-team/keras#23553: 2x SavedModel size and 2x variable memory in TF Serving).

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, image_size, image_size, 1], tf.float32, name=meta.US_IMAGE_KEY)
        ]
    )
    def serve(us_image):
        return {meta.MR_IMAGE_KEY: generator(us_image, training=False)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=meta.US_PNG_KEY)])
    def serve_png(us_png_bytes):
        us_image, sizes = decode_us_batch(us_png_bytes, image_size)
        mr_image = generator(us_image, training=False)
        return {meta.MR_PNG_KEY: encode_mr_batch(mr_image, sizes)}

    archive.add_endpoint(meta.SERVING_SIGNATURE, serve)
    archive.add_endpoint(meta.PNG_SIGNATURE, serve_png)
    return archive


def write_version(out_dir, name, version, overwrite, write):
    """``<out_dir>/<name>/<version>/`` written by ``write(path)`` (a SavedModel writer).

    ``version`` None: one more than the highest existing (or 1). It is written next to the
    target, then renamed: TF Serving ignores non-numeric folders, and a failed export leaves
    no half-written version behind. Returns the version folder.
    """
    model_dir = pathlib.Path(out_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    existing = meta.list_versions(model_dir)
    version = int(version if version is not None else (existing[-1] + 1 if existing else 1))
    if version < 0:
        raise ConfigError(f"version {version}: must be a non-negative integer")
    version_dir = model_dir / str(version)
    if version_dir.exists() and not overwrite:
        raise ConfigError(f"{version_dir}: already exists (pass overwrite / --overwrite)")
    replace_dir(version_dir, write, prefix=f".export-{version}-")
    return version_dir


def export_savedmodel(
    generator_or_model,
    out_dir="saved_models",
    name="usmr",
    version=None,
    metadata=None,
    image_size=None,
    overwrite=False,
):
    """Write ``<out_dir>/<name>/<version>/`` (SavedModel), ``usmr.json`` and ``MODEL_CARD.md``.

    Args:
        generator_or_model: a usmr_tf model (its ``.generator`` is exported) or a US -> MR
            ``keras.Model`` mapping ``[B, S, S, 1]`` in [-1, 1] to the same shape.
        out_dir: the model base folder (TF Serving's ``--model_base_path`` parent).
        name: model name (TF Serving ``MODEL_NAME``), a folder under ``out_dir``.
        version: integer version; default one more than the highest existing version (or 1).
        metadata: extra ``usmr.json`` fields: ``slice_axis``, ``training_data``,
            ``volume_normalisation``, ``model``, ``checkpoint``, ``config``.
        image_size: only for generators without a fixed input size.
        overwrite: replace an existing ``<version>`` folder.

    Returns:
        ``pathlib.Path`` of the version folder.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(name)):
        raise ConfigError(f"model name {name!r}: use letters, digits, '_', '-', '.'")
    generator = inference_generator(generator_or_model)
    size = _image_size(generator, image_size)
    check_inference_variables(generator.variables)

    archive = build_export_archive(generator, size)
    version_dir = write_version(out_dir, name, version, overwrite,
                                lambda path: archive.write_out(str(path), verbose=False))
    model_dir, version = version_dir.parent, int(version_dir.name)

    info = meta.build_metadata(name, version, size, metadata, meta.read_metadata(model_dir))
    write_text_atomic(model_dir / meta.METADATA_FILE, json.dumps(info, indent=2) + "\n")
    write_text_atomic(model_dir / meta.MODEL_CARD_FILE, meta.model_card(info))
    return version_dir
