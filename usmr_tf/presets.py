"""Pretrained models by name (KerasHub-style): ``usmr_tf.from_preset("fetal_hc18_v2")``.

A preset is an exported model folder ``saved_models/<name>/`` (TF Serving layout: numbered
version folders, ``usmr.json``, ``MODEL_CARD.md``). The presets folder (`presets_dir`) is,
first found:

1. ``$USMR_PRESETS_DIR`` when set;
2. the repository's ``saved_models/`` (a source checkout or an editable install);
3. ``usmr_tf/_presets/`` inside the installed package: ``pip install .`` copies
   ``saved_models/`` there at build time (``setup.py``), so presets work from any folder.

Outputs are research images, not for diagnosis.
"""

import os
import pathlib

from usmr_tf.errors import ConfigError

REPO_PRESETS = pathlib.Path(__file__).resolve().parents[1] / "saved_models"
PACKAGED_PRESETS = pathlib.Path(__file__).resolve().parent / "_presets"


def presets_dir():
    """The folder presets are read from (see the module docstring for the order)."""
    if os.environ.get("USMR_PRESETS_DIR"):
        return pathlib.Path(os.environ["USMR_PRESETS_DIR"])
    # A checkout's saved_models/ sits beside the package's setup.cfg; a bare site-packages/
    # never has one, but check the marker so an unrelated folder of that name is not taken.
    if REPO_PRESETS.is_dir() and (REPO_PRESETS.parent / "setup.cfg").is_file():
        return REPO_PRESETS
    if PACKAGED_PRESETS.is_dir():
        return PACKAGED_PRESETS
    return REPO_PRESETS


def _has_version(model_dir):
    """Whether `model_dir` has a TF Serving version folder (``<digits>/saved_model.pb``).

    Same rule as `usmr_tf.export.metadata.list_versions`, without importing
    `usmr_tf.export` (which imports TensorFlow): `usmr presets` stays fast.
    """
    return any(p.is_dir() and p.name.isdigit() and (p / "saved_model.pb").exists()
               for p in model_dir.iterdir())


def list_presets():
    """Names of the exported models under `presets_dir()`, sorted."""
    root = presets_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _has_version(p))


def preset_summary(name):
    """One line from the preset's model card: its first sentence after the title, or ''."""
    card = presets_dir() / name / "MODEL_CARD.md"
    if not card.exists():
        return ""
    for line in card.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.lower().startswith("summary:"):
            return line.split(":", 1)[1].strip()
    return ""


def preset_path(name):
    """``saved_models/<name>``; an unknown name raises ConfigError listing the known ones."""
    known = list_presets()
    if name not in known:
        raise ConfigError(
            f"unknown preset {name!r}; known presets: {', '.join(known) or 'none'} "
            f"(in {presets_dir()})")
    return presets_dir() / name


def from_preset(name, version=None):
    """A ready inference model: ``model(us)`` with float32 [B, S, S, 1] in [-1, 1] -> MR.

    Returns a `usmr_tf.export.runtimes.SavedModelRunner` (TensorFlow's own SavedModel loader,
    the graph TF Serving runs); ``.image_size``, ``.metadata`` and ``.signatures`` describe it.
    """
    from usmr_tf.export.runtimes import SavedModelRunner

    return SavedModelRunner(preset_path(name), version=version)
