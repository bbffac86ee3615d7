"""Pretrained models by name (KerasHub-style): ``usmr_tf.from_preset("fetal_hc18_cc0")``.

A preset is an exported model folder ``saved_models/<name>/`` (TF Serving layout: numbered
version folders, ``usmr.json``, ``MODEL_CARD.md``). The presets folder is the repository's
``saved_models/``, or ``$USMR_PRESETS_DIR`` when set. Outputs are research images, not for
diagnosis.
"""

import os
import pathlib

from usmr_tf.errors import ConfigError

REPO_PRESETS = pathlib.Path(__file__).resolve().parents[1] / "saved_models"


def presets_dir():
    return pathlib.Path(os.environ.get("USMR_PRESETS_DIR", REPO_PRESETS))


def list_presets():
    """Names of the exported models under `presets_dir()`, sorted."""
    from usmr_tf.export.metadata import list_versions

    root = presets_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and list_versions(p))


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
