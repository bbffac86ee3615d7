"""Build hook only; the package metadata is in setup.cfg.

The wheel ships the pretrained models: `build_py` copies every preset folder of the
top-level ``saved_models/`` (TF Serving layout, kept as is in the repository) into
``usmr_tf/_presets/`` of the build, so whatever ``saved_models/`` holds at build time is
what ``pip install .`` installs (`usmr_tf.presets.presets_dir`). Editable installs read
``saved_models/`` in place.
"""

import pathlib
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

SAVED_MODELS = pathlib.Path(__file__).resolve().parent / "saved_models"
PACKAGED = ("usmr_tf", "_presets")


class BuildPyWithPresets(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = pathlib.Path(self.build_lib, *PACKAGED)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        presets = sorted(p for p in SAVED_MODELS.iterdir() if p.is_dir()
                         and not p.name.startswith((".", "_"))) if SAVED_MODELS.is_dir() else []
        for preset in presets:
            shutil.copytree(preset, target / preset.name,
                            ignore=shutil.ignore_patterns(".*", "__pycache__", "*.pyc"))
        self.announce(f"packaged presets: {', '.join(p.name for p in presets) or 'none'}", 2)


setup(cmdclass={"build_py": BuildPyWithPresets})
