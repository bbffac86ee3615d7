"""`usmr.json` and `MODEL_CARD.md`: what an exported model expects, beside its version dirs.

Layout written by :func:`usmr_tf.export.export_savedmodel` (the one TF Serving reads)::

    saved_models/<name>/
        usmr.json          # preprocessing contract + one entry per exported version
        MODEL_CARD.md
        1/saved_model.pb, variables/, ...
        2/...

TF Serving only looks at the numeric sub-folders, so the two extra files do not disturb it.
"""

import datetime
import json
import pathlib

from usmr_tf.errors import ConfigError

METADATA_FILE = "usmr.json"
MODEL_CARD_FILE = "MODEL_CARD.md"
SERVING_SIGNATURE = "serving_default"
PNG_SIGNATURE = "predict_png"
US_IMAGE_KEY = "us_image"
MR_IMAGE_KEY = "mri_image"
# TF Serving's REST API base64-encodes string outputs whose name ends in "_bytes".
US_PNG_KEY = "us_png_bytes"
MR_PNG_KEY = "mri_png_bytes"
RESEARCH_NOTICE = "Research output, not for diagnosis."
# What `usmr synthesize` does (the training preprocessing of usmr_tf.data) ...
VOLUME_NORMALISATION = (
    "usmr_tf.data.volume_to_slices: reorient to RAS, crop to the foreground (Otsu), "
    "foreground 1st-99th percentiles -> [-1, 1], isotropic resampling, fit into "
    "image_size x image_size (aspect kept, -1 padding)"
)
IMAGE_NORMALISATION = (
    "usmr_tf.data.image_to_slice: foreground (Otsu) 1st-99th percentiles -> [-1, 1], "
    "fit into image_size x image_size (aspect kept, -1 padding)"
)
# ... and what the in-graph `predict_png` signature does (no NumPy/SciPy on the server):
# 8-bit grey level g -> g / 127.5 - 1, so 0 (black background) -> -1 and 255 -> 1.
PNG_NORMALISATION = (
    "predict_png signature: uint8 grey level g -> g / 127.5 - 1 (0 -> -1 background, 255 -> +1)"
)


def list_versions(model_dir):
    """Numeric version folders of ``model_dir`` that hold a ``saved_model.pb``, ascending."""
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in model_dir.iterdir()
        if p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").exists()
    )


def read_metadata(model_dir):
    """The ``usmr.json`` dict of ``saved_models/<name>``, or ``{}`` if there is none."""
    path = pathlib.Path(model_dir) / METADATA_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ConfigError(f"{path}: unreadable model metadata ({exc})") from None


def resolve_model_dir(path, version=None):
    """``saved_models/<name>`` or ``saved_models/<name>/<v>`` -> (model_dir, version, version_dir)."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").exists() and path.name.isdigit():
        if version is not None and int(version) != int(path.name):
            raise ConfigError(f"{path}: is version {path.name}, not version {version}")
        return path.parent, int(path.name), path
    versions = list_versions(path)
    if not versions:
        raise ConfigError(
            f"{path}: no exported model here (expected <dir>/<version>/saved_model.pb; "
            "make one with `usmr export`)"
        )
    if version is None:
        version = versions[-1]
    elif int(version) not in versions:
        raise ConfigError(f"{path}: no version {version} (have {versions})")
    return path, int(version), path / str(int(version))


def build_metadata(name, version, image_size, extra=None, previous=None):
    """The ``usmr.json`` dict after exporting ``version`` (merges earlier versions' entries)."""
    extra = dict(extra or {})
    entry = {
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "image_size": int(image_size),
        **{k: v for k, v in extra.items() if k in ("model", "checkpoint", "config")},
    }
    versions = dict((previous or {}).get("versions", {}))
    versions[str(int(version))] = entry
    return {
        "name": name,
        "format": "usmr-export/1",
        "notice": RESEARCH_NOTICE,
        "latest_version": max(int(v) for v in versions),
        "image_size": int(image_size),
        "channels": 1,
        "slice_axis": int(extra.get("slice_axis", 2)),
        "normalisation": {
            "model_range": [-1.0, 1.0],
            "background": -1.0,
            "volumes": extra.get("volume_normalisation", VOLUME_NORMALISATION),
            "images": IMAGE_NORMALISATION,
            "png": PNG_NORMALISATION,
            "png_geometry": "zero-pad to a centred square, bilinear resize to image_size; "
            "output resized back and cropped to the input's height x width",
        },
        "training_data": extra.get("training_data", "unknown (not given at export time)"),
        "signatures": {
            SERVING_SIGNATURE: {
                "inputs": {US_IMAGE_KEY: f"float32 [batch, {image_size}, {image_size}, 1] in [-1, 1]"},
                "outputs": {MR_IMAGE_KEY: f"float32 [batch, {image_size}, {image_size}, 1] in [-1, 1]"},
            },
            PNG_SIGNATURE: {
                "inputs": {US_PNG_KEY: "string [batch]: PNG/JPEG bytes (REST: {\"b64\": ...})"},
                "outputs": {MR_PNG_KEY: "string [batch]: 8-bit grey PNG bytes, input's height x width"},
            },
        },
        "versions": versions,
    }


def model_card(metadata):
    """A short Markdown model card from a ``usmr.json`` dict."""
    name = metadata["name"]
    size = metadata["image_size"]
    versions = ", ".join(sorted(metadata["versions"], key=int))
    return f"""# Model card: {name}

**{RESEARCH_NOTICE}** Synthesized MR images are research images produced from ultrasound by a
generative model; they may contain plausible-looking structure that is not in the patient and
must not be used for clinical decisions.

## What it is
Anatomy-aware US -> MRI-like synthesis (Jiao et al., 2019): the inference path only (anatomy
encoder, MR decoder, cross-modal attention); no discriminator, EdgeNet or reverse-path weights.

- Versions: {versions} (latest {metadata["latest_version"]})
- Input: one greyscale ultrasound image or slice, {size} x {size}, intensities in [-1, 1]
- Slice axis for volumes: {metadata["slice_axis"]}
- Training data: {metadata["training_data"]}

## Signatures
- `{SERVING_SIGNATURE}`: `{US_IMAGE_KEY}` float32 [batch, {size}, {size}, 1] -> `{MR_IMAGE_KEY}` (same shape)
- `{PNG_SIGNATURE}`: `{US_PNG_KEY}` string [batch] (PNG/JPEG bytes) -> `{MR_PNG_KEY}` string [batch] (PNG)

## Preprocessing
- Volumes (`usmr synthesize`): {metadata["normalisation"]["volumes"]}
- Images (`usmr synthesize`): aligned first by usmr_tf.data.hc18.spatial_normalize (head
  centred, major axis horizontal, 0.8 x image_size long, 1st-99th percentiles inside the head
  -> [-1, 1], -1 outside: the HC18 presets' training preprocessing) from the head locator's
  ellipse (`--align auto`, the default) or the HC18 annotation (`--align hc18`);
  `--align none`: {metadata["normalisation"].get("images", "")}
- Encoded images sent to the server: {metadata["normalisation"]["png"]};
  {metadata["normalisation"]["png_geometry"]}

## Limitations
Trained on small public data sets; not validated on clinical scans. Outputs are not diagnostic.
"""
